"""The Celery broker as the rest of nurture sees it: its queues, and how many tasks wait in each.

Depths are read through kombu (``queue_declare(passive=True).message_count``), so they are the
transport's own count: Redis priority sub-queues and the SQLAlchemy transport's tables alike,
with no broker internals (key suffixes, table names) in our code. One :class:`BrokerGauge` per
process keeps one kombu connection, reused by ``/readyz``, ``/metrics`` and the ops console.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError, OperationalError

# Every queue the workers consume, defined once (workers/app.py declares them from here).
QUEUES = ("dispatch", "email", "sms")
TIMEOUT_SECONDS = 2.0


class BrokerGauge:
    """Queue depths from the broker; a queue that cannot be read right now is None."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: Connection | None = None
        # kombu channels are not thread-safe and the web process reads from its thread pool.
        self._lock = threading.Lock()

    def depths(self) -> dict[str, int | None]:
        with self._lock:
            connection = self._connected()
            errors: tuple[type[BaseException], ...] = (
                *connection.connection_errors,
                *connection.channel_errors,
                OperationalError,
                OSError,
            )
            try:
                channel = connection.default_channel
                return {queue: self._depth(channel, queue) for queue in QUEUES}
            except errors:
                self._drop()
                return dict.fromkeys(QUEUES)

    def reachable(self) -> bool:
        return all(depth is not None for depth in self.depths().values())

    def close(self) -> None:
        with self._lock:
            self._drop()

    @staticmethod
    def _depth(channel: Any, queue: str) -> int:
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError:
            return 0  # not declared yet (no worker has started, or Redis dropped the empty list)

    def _connected(self) -> Connection:
        if self._connection is None:
            # The SQLAlchemy transport hands its options to create_engine (stack-notes), so
            # socket timeouts are for Redis only.
            redis_options = {
                "socket_timeout": self._timeout,
                "socket_connect_timeout": self._timeout,
                "max_retries": 0,
            }
            self._connection = Connection(
                self._url,
                connect_timeout=self._timeout,
                transport_options=redis_options if self._url.startswith("redis") else {},
            )
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close too
                self._connection.release()
            self._connection = None
