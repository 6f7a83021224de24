"""Time zones and send windows (pure functions; no I/O)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def lead_zone(timezone: str | None, clinic_zone: ZoneInfo) -> ZoneInfo:
    """The zone to read a lead's local time in: their own when known, else the clinic's."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return clinic_zone
