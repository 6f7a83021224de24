"""One token bucket per sending number, shared by every worker through Redis.

Twilio sends about one text a second from a long code (three from a toll-free number, about a
hundred from a short code). Celery's rate_limit is per worker, so it cannot keep that promise.
Texts waiting their turn wait in our database, not in Twilio's queue: a STOP that arrives
meanwhile still stops them.

Each text takes the next free slot (the bucket may go into debt); a text whose slot is in the
future goes back to the schedule until then and keeps its slot, so the rate holds exactly and
nothing is re-queued over and over.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

# Atomic in Redis, on Redis's own clock (every worker agrees on "now").
_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate) - 1
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, 86400)
local wait = 0
if tokens < 0 then wait = -tokens / rate end
return {tostring(wait), tostring(now)}
"""


@dataclass(frozen=True)
class Slot:
    wait: float  # seconds from now until this text may leave (0: now)
    at: float  # that moment, on Redis's clock (UNIX seconds)


class SenderThrottle:
    def __init__(self, redis_url: str, *, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.per_second = per_second
        self._take = self.client.register_script(_TAKE)

    def take(self, sender: str) -> Slot:
        """Reserve the next slot for one text from ``sender``."""
        # A burst of one: texts are evenly spaced, never several in the same instant.
        wait, now = self._take(keys=[f"nurture:throttle:{sender}"], args=[self.per_second, 1])
        return Slot(wait=float(wait), at=float(now) + float(wait))

    def now(self) -> float:
        seconds, micros = self.client.time()
        return float(seconds) + micros / 1_000_000

    def close(self) -> None:
        self.client.close()
