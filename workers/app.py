"""Celery wiring: broker, queues, routes, reliability settings and the beat schedule.

Celery only carries work that is due now; delays live in the database (DESIGN.md §2), so no
task here is ever given an ETA or countdown.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from kombu import Queue

import workers.metrics_dir  # noqa: F401 - before anything imports prometheus_client
from nurture.logs import make_formatter, mask_handlers
from nurture.settings import Settings, get_settings

QUEUES = ("dispatch", "email", "sms")
BROKER_PURGE_INTERVAL = 600.0


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.resolved_broker_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        # A task is acknowledged after it ran, and given back if its worker dies mid-way;
        # the row's conditional UPDATE makes running it twice harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "dispatch",
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": {
            "nurture.send_email": {"queue": "email"},
            "nurture.send_sms": {"queue": "sms"},
            "nurture.*": {"queue": "dispatch"},
        },
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "dispatch-due": {
                "task": "nurture.dispatch_due",
                "schedule": settings.dispatch_interval,
                # A tick nobody ran in time is worthless: the next one claims the same rows.
                "options": {"expires": max(settings.dispatch_interval, 1.0)},
            },
            "reap-stale": {
                "task": "nurture.reap_stale",
                "schedule": settings.reap_interval,
                "options": {"expires": settings.reap_interval},
            },
        },
    }
    if settings.embedded_broker:
        from kombu.transport import sqlalchemy as kombu_sqlalchemy

        # The SQLAlchemy transport polls; its interval is a class attribute, because kombu
        # passes broker_transport_options straight to create_engine (stack-notes).
        kombu_sqlalchemy.Transport.polling_interval = 0.25
        config["beat_schedule"]["purge-broker"] = {
            "task": "nurture.purge_broker",
            "schedule": BROKER_PURGE_INTERVAL,
            "options": {"expires": BROKER_PURGE_INTERVAL},
        }
    return config


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_celery_logs(logger: logging.Logger, **_kwargs: Any) -> None:
    # Celery's own handlers print task arguments and exceptions: mask them like ours, and
    # write JSON lines unless a person is watching a terminal.
    settings = get_settings()
    for handler in logger.handlers:
        if settings.log_format != "text" and not (
            settings.log_format == "auto" and _is_tty(handler)
        ):
            handler.setFormatter(make_formatter("json"))
    mask_handlers(logger)


def _is_tty(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


def create_app(settings: Settings | None = None) -> Celery:
    app = Celery("nurture", include=["workers.tasks", "workers.lifecycle"])
    app.conf.update(celery_config(settings or get_settings()))
    return app


app = create_app()
