"""Rate limits on the public sign-up: it triggers texts, so it is a target for SMS pumping.

Limits are counted in Redis when the broker is Redis (every web process shares them), and in
memory on the embedded setup (one process).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies


@dataclass(frozen=True)
class Limited:
    what: str
    retry_after: int  # seconds


class SignupLimiter:
    def __init__(self, storage_uri: str, *, per_ip: str, per_phone: str) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))
        self._per_ip: RateLimitItem = parse(per_ip)
        self._per_phone: RateLimitItem = parse(per_phone)

    def _hit(self, item: RateLimitItem, kind: str, key: str) -> Limited | None:
        if self._limiter.hit(item, "nurture-signup", kind, key):
            return None
        return Limited(kind, retry_after(self._limiter, item, "nurture-signup", kind, key))

    def check_ip(self, ip: str | None) -> Limited | None:
        return self._hit(self._per_ip, "ip", ip or "unknown")

    def check_phone(self, phone: str | None) -> Limited | None:
        return self._hit(self._per_phone, "phone", phone) if phone else None


def retry_after(limiter: strategies.RateLimiter, item: RateLimitItem, *keys: str) -> int:
    """Whole seconds until the full window ``keys`` has room again (at least 1, for Retry-After)."""
    reset = limiter.get_window_stats(item, *keys).reset_time
    return max(1, math.ceil(reset - time.time()))


def storage_uri_for(broker_url: str) -> str:
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return "memory://"
