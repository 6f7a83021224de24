"""Times as staff type and read them in the admin pages.

A ``datetime-local`` form field has no zone: it means wall-clock time in a zone the page names
(the lead's own, or a sample lead's). Everything stored stays aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nurture.content.rendering import describe_local_time


class LocalTimeError(ValueError):
    pass


def parse_local_input(text: str, zone: ZoneInfo) -> datetime:
    """``2026-03-10T10:00`` read as wall-clock time in ``zone``, returned as aware UTC.

    A value that carries its own offset keeps it. Raises LocalTimeError with a readable reason.
    """
    cleaned = text.strip()
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise LocalTimeError(
            f"{cleaned[:40]!r} is not a date and time; write it like 2026-03-10T10:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def local_input_value(instant: datetime | None, zone: ZoneInfo) -> str:
    """The value a ``datetime-local`` field shows for an instant, in ``zone``."""
    if instant is None:
        return ""
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def utc_text(instant: datetime | None) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if instant else ""


def local_text(instant: datetime | None, zone: ZoneInfo) -> str:
    return describe_local_time(instant, zone) if instant else ""


def next_full_hour(now: datetime, zone: ZoneInfo) -> datetime:
    """The next full hour in ``zone`` (now itself when it is one), as aware UTC."""
    local = now.astimezone(zone)
    rounded = local.replace(minute=0, second=0, microsecond=0)
    if rounded < local:
        rounded += timedelta(hours=1)
    return rounded.astimezone(UTC)


def days_later_at(start: datetime, zone: ZoneInfo, *, days: int, hour: int) -> datetime:
    """``days`` calendar days after ``start`` (in ``zone``), at ``hour``:00 local, as UTC."""
    day = start.astimezone(zone).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)
