"""6. Worker memory: the prefork children's resident memory after 1k and after 100k sends."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from bench.harness import environment, insert_due_messages, rss_of_children
from nurture import clock
from nurture.db.models import Message


def sent(env: Any) -> int:
    with env.services.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Message).where(Message.sent_at.is_not(None))
            )
            or 0
        )


def run(early: int = 1_000, late: int = 100_000) -> dict[str, Any]:
    with environment("memory") as env:
        insert_due_messages(env.services, late, due_at=clock.utcnow())
        env.stack.extra_env.update(
            env.worker_env(NURTURE_DISPATCH_INTERVAL="0.5", NURTURE_LOG_LEVEL="WARNING")
        )
        worker = env.stack.worker("memory")
        readings: dict[int, int] = {}
        deadline = time.monotonic() + max(900.0, late / 20)
        for mark in (early, late):
            while sent(env) < mark:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {sent(env)} sent")
                time.sleep(0.2)
            readings[mark] = rss_of_children(worker.popen.pid)
    growth = readings[late] / readings[early] - 1
    return {
        "name": "worker memory",
        "rss_mib": {str(k): round(v / 2**20, 1) for k, v in readings.items()},
        "growth": round(growth, 3),
        "target": "<= 0.10",
        "met": growth <= 0.10,
    }
