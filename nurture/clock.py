"""The one wall clock of the application.

Everything that needs "now" calls :func:`utcnow`, so tests control time with freezegun
and every stored instant is timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse a naive one (its meaning is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime has no time zone; give an offset such as +00:00")
    return value.astimezone(UTC)
