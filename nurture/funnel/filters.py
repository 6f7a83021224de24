"""What the funnel is asked for: since a date (the clinic's midnight), one sequence or all.
The page, its CSV export and the CLI parse them here, with the same messages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


class FilterError(ValueError):
    """``field`` names the input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    sequence: str | None = None

    def as_params(self) -> dict[str, str]:
        return {
            "since": self.since.date().isoformat() if self.since else "",
            "sequence": self.sequence or "",
        }


def parse_since(value: str | None, zone: ZoneInfo) -> datetime | None:
    """A date (YYYY-MM-DD) as the start of that day in the clinic's zone; blank: no bound."""
    if value is None or not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(
            "since", f"{value.strip()!r} is not a date; write YYYY-MM-DD, e.g. 2026-03-01"
        ) from None
    return datetime.combine(day, time(), tzinfo=zone)


def parse_filters(
    since: str | None, sequence: str | None, *, zone: ZoneInfo, sequences: Collection[str]
) -> Filters:
    key = (sequence or "").strip() or None
    if key is not None and key not in sequences:
        known = ", ".join(sorted(sequences)) or "none"
        raise FilterError("sequence", f"no sequence {key!r}; use one of {known}")
    return Filters(since=parse_since(since, zone), sequence=key)
