"""A booking tool's webhook, normalised: what happened to which booking, when, and for whom.

Each provider's module (calendly, calcom, acuity, square) turns its own wire format into one
:class:`BookingEvent`; :mod:`nurture.leads.bookings.apply` does the rest the same way for all.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from nurture import clock
from nurture.config.integrations import BookingProvider


class BookingKind(StrEnum):
    BOOKED = "booked"
    RESCHEDULED = "rescheduled"
    # Calendly's cancel with ``rescheduled: true``: the other half of a reschedule, whose new
    # booking says where the consult went. Never a cancellation on its own.
    REPLACED = "replaced"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    COMPLETED = "completed"
    # Acknowledged and recorded, nothing else (a no-show un-marked, a form submission, ...).
    IGNORED = "ignored"


class SignatureError(Exception):
    """The delivery is not signed by the provider: answered 403, nothing recorded."""


class PayloadError(ValueError):
    """The signed body is not the shape the provider documents; ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Invitee:
    """Who booked, as the booking tool wrote it (normalised later; hostile input is data)."""

    email: str | None = None
    phone: str | None = None
    first_name: str = ""
    last_name: str = ""
    # The number the booking form collected for text reminders, and the form's field that
    # held it: the only consent to texts a booking carries.
    text_reminder_number: str | None = None
    text_reminder_field: str | None = None
    # The IANA zone the booking page showed them times in (weak evidence: it only narrows).
    timezone: str | None = None


@dataclass(frozen=True)
class BookingEvent:
    provider: BookingProvider
    # The provider's identity of this change: a second delivery of it changes nothing.
    delivery_key: str
    # The booking (Calendly: the invitee) the change is about.
    booking_key: str
    kind: BookingKind
    # The booking's own timestamp for the change: events apply in this order.
    occurred_at: datetime
    consult_at: datetime | None = None
    # The event type's id, name, URI, ...: matched against config/integrations.yaml. None:
    # the delivery does not say (a no-show naming only the booking).
    event_types: tuple[str, ...] | None = None
    invitee: Invitee = field(default_factory=Invitee)
    # The booking this one replaces (a reschedule that makes a new booking).
    replaces: str | None = None
    # The provider's own words for what happened, for the record ("invitee.created").
    provider_event: str = ""

    @property
    def lead_event_key(self) -> str:
        """The idempotency key of the lifecycle event this delivery applies (<= 200 chars)."""
        digest = hashlib.sha256(self.delivery_key.encode()).hexdigest()
        return f"{self.provider}:{digest}"


def hex_hmac_sha256(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def same(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures as text."""
    return hmac.compare_digest(expected.encode(), given.encode())


def parse_instant(value: object, field_name: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` included), as aware UTC."""
    if not isinstance(value, str) or not value:
        raise PayloadError(field_name, "must be an ISO 8601 time with an offset")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(field_name, f"{value[:40]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PayloadError(field_name, f"{value[:40]!r} has no offset")
    return clock.ensure_utc(parsed)


def text(data: dict[str, Any], key: str, field_name: str | None = None) -> str | None:
    """``data[key]`` when it is non-blank text; a PayloadError when it is something else."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(field_name or key, "must be text")
    return value.strip() or None


def obj(data: object, field_name: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError(field_name, "must be a JSON object")
    return data


def split_name(full: str | None) -> tuple[str, str]:
    first, _, last = (full or "").strip().partition(" ")
    return first, last.strip()
