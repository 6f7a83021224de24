"""Square Appointments (Bookings API) webhooks: ``x-square-hmacsha256-signature`` is base64
HMAC-SHA256 of the notification URL (exactly as subscribed) followed by the raw body, with
the subscription's signature key. ``booking.created`` and ``booking.updated`` (cancellations
and no-shows are statuses of an update) name a customer id only: the customer's e-mail and
phone are read from the Customers API before anything is written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from nurture.leads.bookings.event import (
    BookingEvent,
    BookingKind,
    Invitee,
    PayloadError,
    SignatureError,
    obj,
    parse_instant,
    same,
    text,
)
from nurture.leads.bookings.fetching import Fetcher

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
SQUARE_VERSION = "2024-10-17"
CANCELLED = frozenset({"CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "DECLINED"})
BOOKED = frozenset({"ACCEPTED", "PENDING"})


def signature(key: str, notification_url: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), notification_url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(header: str | None, body: bytes, key: str, *, notification_url: str) -> None:
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    if not same(signature(key, notification_url, body), header.strip()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the URL and body")


def parse(body: bytes) -> tuple[BookingEvent, str | None]:
    """The event (its invitee still unknown) and the customer id to read it from."""
    try:
        envelope = obj(json.loads(body), "body")
    except (ValueError, RecursionError):
        raise PayloadError("body", "not JSON") from None
    kind_name = text(envelope, "type") or ""
    event_id = text(envelope, "event_id")
    if event_id is None:
        raise PayloadError("event_id", "missing")
    if kind_name not in {"booking.created", "booking.updated"}:
        at = parse_instant(envelope.get("created_at"), "created_at")
        return (
            BookingEvent(
                "square",
                event_id,
                kind_name or "unknown",
                BookingKind.IGNORED,
                at,
                provider_event=kind_name,
            ),
            None,
        )
    data = obj(envelope.get("data"), "data")
    booking = obj(obj(data.get("object"), "data.object").get("booking"), "data.object.booking")
    booking_id = text(booking, "id", "data.object.booking.id")
    if booking_id is None:
        raise PayloadError("data.object.booking.id", "missing")
    status = text(booking, "status", "data.object.booking.status") or ""
    stamp = booking.get("updated_at") or envelope.get("created_at")
    occurred_at = parse_instant(stamp, "data.object.booking.updated_at")
    if status in CANCELLED:
        kind = BookingKind.CANCELLED
    elif status == "NO_SHOW":
        kind = BookingKind.NO_SHOW
    elif status in BOOKED:
        kind = BookingKind.BOOKED
    else:
        kind = BookingKind.IGNORED
    start = booking.get("start_at")
    segments = booking.get("appointment_segments") or []
    services = tuple(
        value
        for segment in (segments if isinstance(segments, list) else [])
        if isinstance(segment, dict)
        and isinstance(value := segment.get("service_variation_id"), str)
        and value
    )
    event = BookingEvent(
        provider="square",
        delivery_key=event_id,
        booking_key=booking_id,
        kind=kind,
        occurred_at=occurred_at,
        consult_at=(
            parse_instant(start, "data.object.booking.start_at")
            if start and kind is BookingKind.BOOKED
            else None
        ),
        event_types=services or None,
        provider_event=f"{kind_name}:{status}",
    )
    return event, text(booking, "customer_id", "data.object.booking.customer_id")


def fetch_customer(
    fetcher: Fetcher, *, api_url: str, access_token: str, customer_id: str
) -> Invitee:
    data = fetcher.get_json(
        f"{api_url.rstrip('/')}/v2/customers/{quote(customer_id, safe='')}",
        what=f"Square customer {customer_id[:40]}",
        headers={"Authorization": f"Bearer {access_token}", "Square-Version": SQUARE_VERSION},
    )
    customer: dict[str, Any] = obj(data.get("customer"), "customer")
    return Invitee(
        email=text(customer, "email_address", "customer.email_address"),
        phone=text(customer, "phone_number", "customer.phone_number"),
        first_name=text(customer, "given_name", "customer.given_name") or "",
        last_name=text(customer, "family_name", "customer.family_name") or "",
    )


def with_invitee(event: BookingEvent, invitee: Invitee) -> BookingEvent:
    return replace(event, invitee=invitee)
