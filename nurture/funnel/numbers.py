"""The funnel's numbers for one view (by sequence, step, template version, …): pure functions
over plain rows, the one place each number is defined, so the page, its CSV and
``nurture report funnel`` can never disagree.

Only a sequence's messages count (replies, confirmations and staff alerts are not the program).

=================  ==========================================================================
number             definition, for the messages of one row of a view
=================  ==========================================================================
reached            distinct leads with a message ``sent`` or ``delivered``
booked             distinct leads with a booked consult (a ``consult_booked`` event) credited
                   to one of these messages by last touch (:mod:`nurture.funnel.attribution`:
                   the latest message sent before the booking, if the booking came within its
                   channel's window)
booking_rate       booked / reached, in per cent (one decimal; none when nobody was reached)
median_hours       the median, over the booked leads, of the time from the credited message to
                   the booking (a lead credited twice in a row: its quicker one), in hours
                   (one decimal)
clicked            distinct leads who clicked a tracked link in one of these messages (every
                   click is recorded; a lead is counted once)
opted_out          distinct reached leads who revoked consent on the message's channel within
                   that channel's window after a message of the row reached them
opt_out_rate       opted_out / reached, in per cent
attempted          messages handed to a provider: ``sent``, ``delivered``, ``undelivered``,
                   ``failed`` or ``unknown``
failed             messages ``failed`` or ``undelivered``
failure_rate       failed / attempted, in per cent
=================  ==========================================================================

A row's key holds ``None`` where the message has no value (a step without variants, a lead
with no UTM source); it is a row of its own ("none").
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nurture.db.models import Channel, MessageStatus
from nurture.funnel import attribution

REACHED = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED})
ATTEMPTED = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.UNKNOWN,
    }
)
FAILED = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})


@dataclass(frozen=True)
class MessageFact:
    """One sequence message, with what the views group it by."""

    message_id: int
    lead_id: uuid.UUID
    sequence: str
    version: int | None  # the enrolment's sequence version
    step: str
    template: str
    template_version: int | None
    channel: Channel
    variant: str | None
    status: MessageStatus
    sent_at: datetime | None
    utm_source: str | None
    utm_campaign: str | None


@dataclass(frozen=True)
class Revocation:
    lead_id: uuid.UUID
    channel: Channel
    at: datetime


@dataclass(frozen=True)
class Click:
    message_id: int
    lead_id: uuid.UUID


@dataclass(frozen=True)
class Facts:
    """Everything the numbers are computed from (read once, bounded by ``--since``)."""

    messages: Sequence[MessageFact]
    bookings: Sequence[tuple[uuid.UUID, datetime]]
    clicks: Sequence[Click]
    revocations: Sequence[Revocation]


Key = tuple[Any, ...]


@dataclass(frozen=True)
class View:
    name: str
    title: str
    columns: tuple[str, ...]  # what the key holds, in order
    key: Callable[[MessageFact], Key]


def _view(name: str, title: str, *columns: str) -> View:
    def key(fact: MessageFact) -> Key:
        return tuple(getattr(fact, column) for column in columns)

    return View(name, title, columns, key)


VIEWS = (
    _view("sequence", "By sequence", "sequence"),
    _view("version", "By sequence version", "sequence", "version"),
    _view("step", "By step", "sequence", "step"),
    _view("template", "By template version", "channel", "template", "template_version"),
    _view("channel", "By channel", "channel"),
    _view("variant", "By variant", "sequence", "step", "variant"),
    _view("source", "By sign-up source", "utm_source", "utm_campaign"),
)
VIEW_NAMES = tuple(view.name for view in VIEWS)
NUMBERS = (
    "reached",
    "booked",
    "booking_rate",
    "median_hours",
    "clicked",
    "opted_out",
    "opt_out_rate",
    "attempted",
    "failed",
    "failure_rate",
)


@dataclass(frozen=True)
class Numbers:
    reached: int
    booked: int
    booking_rate: float | None
    median_hours: float | None
    clicked: int
    opted_out: int
    opt_out_rate: float | None
    attempted: int
    failed: int
    failure_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in NUMBERS}


@dataclass(frozen=True)
class Row:
    key: Key
    numbers: Numbers


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def hours(duration: timedelta) -> float:
    return round(duration.total_seconds() / 3600, 1)


def rows_of(
    view: View,
    facts: Facts,
    windows: Mapping[Channel, timedelta],
    *,
    sequence: str | None = None,
) -> list[Row]:
    """The view's rows, sorted by key (``None`` after every value); only ``sequence``'s
    messages when one is named. Last touch is judged over every sequence's messages even
    then: a booking that followed another sequence's message is not this one's doing."""
    groups: dict[Key, list[MessageFact]] = defaultdict(list)
    for fact in facts.messages:
        if sequence is None or fact.sequence == sequence:
            groups[view.key(fact)].append(fact)
    credits = _credits(facts, windows)
    clicks_by_message: dict[int, set[uuid.UUID]] = defaultdict(set)
    for click in facts.clicks:
        clicks_by_message[click.message_id].add(click.lead_id)
    revocations: dict[uuid.UUID, list[Revocation]] = defaultdict(list)
    for revocation in facts.revocations:
        revocations[revocation.lead_id].append(revocation)
    rows = [
        Row(key, numbers_of(group, credits, clicks_by_message, revocations, windows))
        for key, group in groups.items()
    ]
    return sorted(rows, key=lambda row: _sortable(row.key))


def _sortable(key: Key) -> tuple[tuple[bool, str], ...]:
    """Numbers in numeric order (version 10 after version 9), text in its own; None last."""
    return tuple(
        (part is None, f"{part:012d}" if isinstance(part, int) else str(part or "")) for part in key
    )


def _credits(
    facts: Facts, windows: Mapping[Channel, timedelta]
) -> dict[int, list[attribution.Credit]]:
    touches = [
        attribution.Touch(fact.message_id, fact.lead_id, fact.channel, fact.sent_at)
        for fact in facts.messages
        if fact.status in REACHED and fact.sent_at is not None
    ]
    by_message: dict[int, list[attribution.Credit]] = defaultdict(list)
    for one in attribution.credit(touches, facts.bookings, windows):
        by_message[one.message_id].append(one)
    return by_message


def numbers_of(
    group: Iterable[MessageFact],
    credits: Mapping[int, list[attribution.Credit]],
    clicks_by_message: Mapping[int, set[uuid.UUID]],
    revocations: Mapping[uuid.UUID, list[Revocation]],
    windows: Mapping[Channel, timedelta],
) -> Numbers:
    messages = list(group)
    reached_messages = [m for m in messages if m.status in REACHED and m.sent_at is not None]
    reached = {m.lead_id for m in reached_messages}
    quickest: dict[uuid.UUID, timedelta] = {}
    for message in reached_messages:
        for one in credits.get(message.message_id, []):
            if one.lead_id not in quickest or one.after < quickest[one.lead_id]:
                quickest[one.lead_id] = one.after
    clicked = set().union(*(clicks_by_message.get(m.message_id, set()) for m in messages))
    opted_out = {
        m.lead_id for m in reached_messages if _revoked_after(m, revocations, windows[m.channel])
    }
    attempted = sum(1 for m in messages if m.status in ATTEMPTED)
    failed = sum(1 for m in messages if m.status in FAILED)
    median = (
        timedelta(seconds=statistics.median(t.total_seconds() for t in quickest.values()))
        if quickest
        else None
    )
    return Numbers(
        reached=len(reached),
        booked=len(quickest),
        booking_rate=percent(len(quickest), len(reached)),
        median_hours=hours(median) if median is not None else None,
        clicked=len(clicked),
        opted_out=len(opted_out),
        opt_out_rate=percent(len(opted_out), len(reached)),
        attempted=attempted,
        failed=failed,
        failure_rate=percent(failed, attempted),
    )


def _revoked_after(
    message: MessageFact, revocations: Mapping[uuid.UUID, list[Revocation]], window: timedelta
) -> bool:
    assert message.sent_at is not None
    start = message.sent_at
    return any(
        r.channel is message.channel and start <= r.at <= start + window
        for r in revocations.get(message.lead_id, [])
    )
