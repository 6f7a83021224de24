"""Calendly webhooks (API v2): ``Calendly-Webhook-Signature: t=<unix>,v1=<hex>`` is
HMAC-SHA256 of ``"<t>." + raw body`` with the subscription's signing key.

A reschedule arrives as two deliveries: ``invitee.canceled`` with ``rescheduled: true`` for
the old invitee, and ``invitee.created`` for the new one naming it in ``old_invitee``. The
cancel only marks the old booking replaced; the create moves the consult: one reschedule.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from nurture.leads.bookings.event import (
    BookingEvent,
    BookingKind,
    Invitee,
    PayloadError,
    SignatureError,
    hex_hmac_sha256,
    obj,
    parse_instant,
    same,
    split_name,
    text,
)

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
# Calendly does not publish a tolerance; five minutes allows for clock skew while a captured
# delivery cannot be played back later. Its retries are signed afresh.
REPLAY_WINDOW = timedelta(minutes=5)


def verify(header: str | None, body: bytes, key: str, *, now: datetime) -> None:
    """Raise SignatureError unless ``header`` signs ``body`` with ``key`` within the window."""
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    stamps, signatures = parts.get("t", []), parts.get("v1", [])
    if len(stamps) != 1 or not stamps[0].isdecimal() or len(stamps[0]) > 12 or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} is not t=<unix time>,v1=<hex>")
    if abs(now.timestamp() - int(stamps[0])) > REPLAY_WINDOW.total_seconds():
        raise SignatureError(f"{SIGNATURE_HEADER} is older than {REPLAY_WINDOW} (a replay?)")
    expected = hex_hmac_sha256(key.encode(), stamps[0].encode() + b"." + body)
    if not any(same(expected, signature) for signature in signatures):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


KINDS = {
    "invitee.created": BookingKind.BOOKED,
    "invitee.canceled": BookingKind.CANCELLED,
    "invitee_no_show.created": BookingKind.NO_SHOW,
}


def parse(body: bytes) -> BookingEvent:
    try:
        envelope = obj(json.loads(body), "body")
    except (ValueError, RecursionError):
        raise PayloadError("body", "not JSON") from None
    name = text(envelope, "event") or ""
    payload = obj(envelope.get("payload"), "payload")
    occurred_at = parse_instant(envelope.get("created_at"), "created_at")
    kind = KINDS.get(name, BookingKind.IGNORED)
    if name.startswith("invitee_no_show."):
        return _no_show(name, kind, payload, occurred_at)
    if kind is BookingKind.IGNORED:
        key = text(payload, "uri", "payload.uri") or name
        return BookingEvent(
            "calendly",
            f"{name}:{key}:{occurred_at.isoformat()}",
            key,
            kind,
            occurred_at,
            provider_event=name,
        )
    uri = text(payload, "uri", "payload.uri")
    if uri is None:
        raise PayloadError("payload.uri", "the invitee's uri is missing")
    scheduled = obj(payload.get("scheduled_event") or {}, "payload.scheduled_event")
    replaces = None
    if kind is BookingKind.BOOKED:
        replaces = text(payload, "old_invitee", "payload.old_invitee")
        kind = BookingKind.RESCHEDULED if replaces else kind
    elif payload.get("rescheduled") is True:
        kind = BookingKind.REPLACED
    start = scheduled.get("start_time")
    return BookingEvent(
        provider="calendly",
        delivery_key=f"{name}:{uri}:{occurred_at.isoformat()}",
        booking_key=uri,
        kind=kind,
        occurred_at=occurred_at,
        consult_at=parse_instant(start, "payload.scheduled_event.start_time") if start else None,
        event_types=_event_types(scheduled),
        invitee=_invitee(payload),
        replaces=replaces,
        provider_event=name,
    )


def _no_show(
    name: str, kind: BookingKind, payload: dict[str, Any], occurred_at: datetime
) -> BookingEvent:
    """``invitee_no_show.*``: the no-show names its invitee by uri (or carries the invitee)."""
    invitee_uri = payload.get("invitee")
    if isinstance(invitee_uri, dict):
        invitee_uri = invitee_uri.get("uri")
    if not isinstance(invitee_uri, str) or not invitee_uri:
        invitee_uri = text(payload, "uri", "payload.uri")
    if not invitee_uri:
        raise PayloadError("payload.invitee", "the no-show names no invitee")
    return BookingEvent(
        provider="calendly",
        delivery_key=f"{name}:{invitee_uri}:{occurred_at.isoformat()}",
        booking_key=invitee_uri,
        kind=kind,
        occurred_at=occurred_at,
        invitee=_invitee(payload) if "email" in payload else Invitee(),
        provider_event=name,
    )


def _event_types(scheduled: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        value
        for value in (scheduled.get("event_type"), scheduled.get("name"))
        if isinstance(value, str) and value
    )


def _invitee(payload: dict[str, Any]) -> Invitee:
    first = text(payload, "first_name", "payload.first_name")
    last = text(payload, "last_name", "payload.last_name")
    if first is None:
        first, last = split_name(text(payload, "name", "payload.name"))
    number = text(payload, "text_reminder_number", "payload.text_reminder_number")
    return Invitee(
        email=text(payload, "email", "payload.email"),
        phone=number,
        first_name=first or "",
        last_name=last or "",
        text_reminder_number=number,
        text_reminder_field="text_reminder_number" if number else None,
        timezone=text(payload, "timezone", "payload.timezone"),
    )
