"""4. Steady-state lateness: messages falling due at a steady rate (20/s for 2 minutes by
default), the worker running with the default dispatch interval; due → sent p50/p99."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.harness import environment, insert_due_messages, lateness, wait_drained
from nurture import clock
from nurture.config.settings import Settings


def run(rate: int = 20, seconds: int = 120) -> dict[str, Any]:
    interval = Settings().dispatch_interval
    size = rate * seconds
    with environment("lateness") as env:
        env.stack.extra_env.update(env.worker_env(NURTURE_DISPATCH_INTERVAL=str(interval)))
        env.stack.worker("steady")
        start = clock.utcnow() + timedelta(seconds=5)  # the worker is ready; due times begin after
        insert_due_messages(
            env.services, size, due_at=[start + timedelta(seconds=n / rate) for n in range(size)]
        )
        wait_drained(env.services, timeout=seconds + 120)
        late = lateness(env.services)
    target = interval + 1
    return {
        "name": "steady-state lateness",
        "rate_per_s": rate,
        "seconds": seconds,
        "dispatch_interval": interval,
        "lateness_seconds": {k: round(v, 2) for k, v in late.items() if k != "n"},
        "target": f"p99 <= {target}",
        "met": late["p99"] <= target,
    }
