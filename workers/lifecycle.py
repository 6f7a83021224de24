"""What the worker's main process does besides running tasks: a heartbeat in the database and
a Prometheus endpoint for the counters its prefork children write."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutdown

from nurture import clock, ops
from nurture.config.settings import get_settings
from nurture.db import session_scope

log = logging.getLogger(__name__)
_stop = threading.Event()


@worker_init.connect
def _fresh_metrics_dir(**_kwargs: Any) -> None:
    # Files left by an earlier run would be added to this run's counters.
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


@worker_ready.connect
def _start(sender: Any, **_kwargs: Any) -> None:
    hostname = str(getattr(sender, "hostname", "worker"))
    queues = (
        ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values()))
        if sender
        else ""
    )
    threading.Thread(
        target=_heartbeat, args=(hostname, queues), name="nurture-heartbeat", daemon=True
    ).start()
    port = get_settings().worker_metrics_port
    if port:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        try:
            start_http_server(port, registry=registry)
        except OSError as error:
            log.warning("worker metrics not served on port %s: %s", port, error)


@worker_shutdown.connect
def _stop_heartbeat(**_kwargs: Any) -> None:
    _stop.set()


def _heartbeat(hostname: str, queues: str) -> None:
    from workers.tasks import services

    while not _stop.is_set():
        try:
            with session_scope(services().sessions) as session:
                ops.record_heartbeat(
                    session, hostname=hostname, pid=os.getpid(), queues=queues, now=clock.utcnow()
                )
        except Exception:  # a database hiccup must not kill the thread; the next beat retries
            log.warning("heartbeat not recorded", exc_info=True)
        _stop.wait(ops.HEARTBEAT_EVERY.total_seconds())
