"""How often someone may try to sign in to the admin, per address and per client.

Three moving windows, each counting attempts before the password is checked:
- per (address, client) pair, strict: one client guessing one account. The real person's own
  pair is theirs alone, so nobody elsewhere can use it up; signing in clears it.
- per address from anywhere, looser and short: many clients guessing one account are slowed,
  and the real person waits at most this window after they stop.
- per client across addresses: one client trying one password on many accounts, or probing
  which addresses exist.

Keys are computed only from what was submitted (address string and client IP), never from the
account, so a throttled answer is the same whether the address has an account or not. Counts
live where the sign-up limits live (`nurture.leads.signup_limits`: Redis when the broker is
Redis, shared by every web process; memory on the embedded setup). Addresses are hashed in
the keys: no address sits in Redis in clear.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies
from limits.errors import StorageError

from nurture.leads.intake import normalize_email
from nurture.leads.signup_limits import retry_after

# Defaults; candidates for settings (NURTURE_LOGIN_PER_PAIR, ..._PER_ADDRESS, ..._PER_CLIENT).
PER_PAIR = "5 per 15 minutes"
PER_ADDRESS = "20 per 5 minutes"
PER_CLIENT = "30 per 15 minutes"
_NAMESPACE = "nurture-login"
# A Redis that does not answer must not hold a sign-in for long.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Throttled:
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        return f"too many attempts; try again in {minutes} minute{'' if minutes == 1 else 's'}"


class LoginThrottle:
    def __init__(
        self,
        storage_uri: str,
        *,
        per_pair: str = PER_PAIR,
        per_address: str = PER_ADDRESS,
        per_client: str = PER_CLIENT,
    ) -> None:
        self._shared = _limiter(storage_uri)
        # When the shared counts cannot be reached, this process counts on its own: staff must
        # still be able to sign in (the ops page is where they see that Redis is down), and an
        # attacker is still slowed.
        self._local = _limiter("memory://")
        self._per_pair: RateLimitItem = parse(per_pair)
        self._per_address: RateLimitItem = parse(per_address)
        self._per_client: RateLimitItem = parse(per_client)

    def _windows(self, email: str, client: str | None) -> list[tuple[RateLimitItem, list[str]]]:
        address, ip = address_key(email), client or "unknown"
        return [
            (self._per_pair, [_NAMESPACE, "pair", address, ip]),
            (self._per_address, [_NAMESPACE, "address", address]),
            (self._per_client, [_NAMESPACE, "client", ip]),
        ]

    def attempt(self, email: str, client: str | None) -> Throttled | None:
        """Count one sign-in attempt, or refuse it (uncounted) when a window is full.

        A refused attempt is not counted, so a window empties on its own however long someone
        keeps knocking."""
        windows = self._windows(email, client)
        try:
            return _attempt(self._shared, windows)
        except StorageError:
            log.warning("sign-in throttle: shared counts unreachable; counting in this process")
            return _attempt(self._local, windows)

    def succeeded(self, email: str, client: str | None) -> None:
        """The person at this client knows the password: their own pair starts afresh."""
        item, keys = self._windows(email, client)[0]
        self._local.clear(item, *keys)
        try:
            self._shared.clear(item, *keys)
        except StorageError:
            log.warning("sign-in throttle: shared counts unreachable; cleared in this process")


def _limiter(storage_uri: str) -> strategies.MovingWindowRateLimiter:
    redis = storage_uri.startswith(("redis://", "rediss://"))
    counts = storage.storage_from_string(
        storage_uri, wrap_exceptions=True, **(_REDIS_TIMEOUTS if redis else {})
    )
    return strategies.MovingWindowRateLimiter(counts)


def _attempt(
    limiter: strategies.MovingWindowRateLimiter, windows: list[tuple[RateLimitItem, list[str]]]
) -> Throttled | None:
    full = [(item, keys) for item, keys in windows if not limiter.test(item, *keys)]
    if not full:
        # Another attempt may have filled a window since the test: hit() has the last word.
        full = [(item, keys) for item, keys in windows if not limiter.hit(item, *keys)]
    if not full:
        return None
    return Throttled(max(retry_after(limiter, item, *keys) for item, keys in full))


def address_key(email: str) -> str:
    """The same key for every spelling of one address (case, Unicode forms), from the submitted
    text alone; malformed input is keyed as typed, so it is throttled too."""
    text = email.strip()[:320]
    try:
        text = normalize_email(text)
    except ValueError:
        text = text.lower()
    return hashlib.sha256(text.encode()).hexdigest()[:32]
