"""2. The 9 a.m. burst: every row due at the same instant (what quiet hours produce each
morning): time to drain, lateness percentiles, and a count by status to show nothing is lost."""

from __future__ import annotations

from typing import Any

from bench.harness import counts, environment, insert_due_messages, lateness, pending, wait_drained
from nurture import clock


def run(size: int = 50_000) -> dict[str, Any]:
    with environment("burst") as env:
        due = clock.utcnow()
        insert_due_messages(env.services, size, due_at=due)
        env.stack.extra_env.update(env.worker_env(NURTURE_DISPATCH_INTERVAL="0.5"))
        env.stack.worker("burst")
        seconds = wait_drained(env.services, timeout=max(600.0, size / 20))
        late = lateness(env.services)
        by_status = counts(env.services)
        arrived = len(env.twilio.messages) + len(env.smtp.received)
        left = pending(env.services)
    return {
        "name": "9 a.m. burst",
        "size": size,
        "drain_seconds": round(seconds, 1),
        "per_second": round(size / seconds, 1),
        "lateness_seconds": {k: round(v, 2) for k, v in late.items() if k != "n"},
        "by_status": by_status,
        "arrived": arrived,
        "nothing_lost": by_status.get("sent", 0) == size == arrived and left == 0,
    }
