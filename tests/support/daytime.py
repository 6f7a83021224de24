"""Live processes cannot have their clock frozen, so live tests pick a lead time zone where it is
daytime right now: the real send windows still apply, and the test passes at any hour."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

CANDIDATES = [f"Etc/GMT{offset:+d}" if offset else "Etc/GMT" for offset in range(-12, 13)]


def zone_where_it_is_daytime(now: datetime | None = None) -> str:
    """An IANA zone whose local time is between 11:00 and 17:59 now."""
    now = now or datetime.now(UTC)
    for name in CANDIDATES:
        if 11 <= now.astimezone(ZoneInfo(name)).hour <= 17:
            return name
    raise AssertionError("no zone has daytime now; impossible with offsets -12..+12")
