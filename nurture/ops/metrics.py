"""Prometheus metrics.

Events (sends, latency from due to sent, provider errors) are counted where they happen, in the
Celery worker's prefork children, with prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR): the worker serves them on NURTURE_WORKER_METRICS_PORT, and
`nurture run` shares the directory with the web process so /metrics shows them too. State (rows
by status, queue depths, workers alive, inbound by class) is read from the database and the
broker when /metrics is scraped, so every web process reports the same truth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from nurture import clock, ops
from nurture.outbox.outcome_metrics import PROVIDER_ERRORS, SEND_LATENCY, SENDS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy.orm import Session, sessionmaker

    QueueDepths = Callable[[], Mapping[str, int | None]]


class StateCollector(Collector):
    """Gauges read from the database and the broker at scrape time."""

    def __init__(self, sessions: sessionmaker[Session], queue_depths: QueueDepths) -> None:
        self.sessions = sessions
        self.queue_depths = queue_depths

    def collect(self) -> Iterator[Metric]:
        from nurture.db.models import InboundMessage, Message

        now = clock.utcnow()
        messages = GaugeMetricFamily(
            "nurture_messages", "Outbox rows by status and channel", labels=["status", "channel"]
        )
        inbound = CounterMetricFamily(
            "nurture_inbound", "Inbound texts by class", labels=["classification"]
        )
        with self.sessions() as session:
            for state, channel, count in session.execute(
                select(Message.status, Message.channel, func.count()).group_by(
                    Message.status, Message.channel
                )
            ):
                messages.add_metric([state.value, channel.value], count)
            for kind, count in session.execute(
                select(InboundMessage.classification, func.count()).group_by(
                    InboundMessage.classification
                )
            ):
                inbound.add_metric([kind.value], count)
            alive = len(ops.workers_alive(session, now))
            oldest = session.scalar(
                select(func.min(Message.due_at)).where(
                    Message.status == "scheduled", Message.due_at <= now
                )
            )
        yield messages
        yield inbound
        yield GaugeMetricFamily(
            "nurture_workers_alive", "Workers with a recent heartbeat", value=alive
        )
        yield GaugeMetricFamily(
            "nurture_oldest_due_seconds",
            "How late the most overdue scheduled row is",
            value=(now - oldest).total_seconds() if oldest else 0,
        )
        depths = GaugeMetricFamily(
            "nurture_queue_depth", "Tasks waiting in each Celery queue", labels=["queue"]
        )
        for queue, depth in self.queue_depths().items():
            if depth is not None:
                depths.add_metric([queue], depth)
        yield depths


def exposition(sessions: sessionmaker[Session], queue_depths: QueueDepths) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in (SENDS, SEND_LATENCY, PROVIDER_ERRORS):
            registry.register(metric)
    registry.register(StateCollector(sessions, queue_depths))
    return generate_latest(registry)
