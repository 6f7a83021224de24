"""Last-touch attribution: which message a booked consult is credited to.

The latest message the lead was sent (status sent or delivered) before the booking gets the
credit, provided the booking came within that message's channel window
(``policy.yaml`` ``attribution``: e-mail 5 days, texts 1 day by default). The window is elapsed
time, not wall-clock days: a window that crosses a daylight-saving change is still 120 hours.
A booking with no message before it, or after the window of the latest one, is credited to no
message (the lead booked on their own, or because of something else).
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nurture.db.models import Channel


@dataclass(frozen=True)
class Touch:
    """A message a lead was sent."""

    message_id: int
    lead_id: uuid.UUID
    channel: Channel
    sent_at: datetime


@dataclass(frozen=True)
class Credit:
    message_id: int
    lead_id: uuid.UUID
    booked_at: datetime
    after: timedelta  # from the message to the booking


def credit(
    touches: Iterable[Touch],
    bookings: Iterable[tuple[uuid.UUID, datetime]],
    windows: Mapping[Channel, timedelta],
) -> list[Credit]:
    """One credit per booking that a message earned (at most one message per booking)."""
    by_lead: dict[uuid.UUID, list[Touch]] = defaultdict(list)
    for touch in touches:
        by_lead[touch.lead_id].append(touch)
    for sent in by_lead.values():
        sent.sort(key=lambda touch: (touch.sent_at, touch.message_id))
    credits = []
    for lead_id, booked_at in bookings:
        latest = _latest_before(by_lead.get(lead_id, []), booked_at)
        if latest is None:
            continue
        after = booked_at - latest.sent_at
        if after <= windows[latest.channel]:
            credits.append(Credit(latest.message_id, lead_id, booked_at, after))
    return credits


def _latest_before(sent: Sequence[Touch], moment: datetime) -> Touch | None:
    """The last message sent strictly before ``moment``."""
    at = bisect_left([touch.sent_at for touch in sent], moment)
    return sent[at - 1] if at else None
