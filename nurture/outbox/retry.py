"""When a message that could not leave is tried again: capped exponential backoff, jittered."""

from __future__ import annotations

import random
from datetime import timedelta

RETRY_BASE = timedelta(minutes=1)  # the default; NURTURE_RETRY_BASE sets it
RETRY_CAP = timedelta(hours=1)


def retry_delay(
    attempts: int, *, rng: random.Random | None = None, base: timedelta = RETRY_BASE
) -> timedelta:
    """Capped exponential backoff with jitter: 1, 2, 4 … minutes up to an hour, at random
    between half and all of it (so retries after an outage do not arrive together)."""
    ceiling: timedelta = min(RETRY_CAP, base * 2 ** max(attempts - 1, 0))
    fraction: float = 0.5 + 0.5 * (rng or random.SystemRandom()).random()
    return ceiling * fraction
