"""How messages leave: SMTP and Twilio in production, files in ``var/outbox/`` when embedded.

Every transport raises one of three errors, because the dispatcher must know whether the
message may have left: :class:`TransientDeliveryError` (it did not; try later),
:class:`PermanentDeliveryError` (it did not and never will) and
:class:`DeliveryOutcomeUnknownError` (it may have: never resend automatically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class Attachment:
    """A file sent with an e-mail. Everything in it is ours (never lead text in a header): the
    file name, the media type and its parameters are fixed strings in the code that makes it."""

    filename: str  # plain ASCII, e.g. "consultation.ics"
    media_type: str  # "text/calendar"
    data: bytes
    params: dict[str, str] = field(default_factory=dict)  # e.g. {"method": "PUBLISH"}


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    reference: str  # our message id, for file names and logs
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    reference: str
    # Appended to the StatusCallback URL: which message and attempt its reports are about.
    status_query: str = ""


class DeliveryError(Exception):
    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Not sent this time (connection refused, 4xx, rate limited); safe to try again."""


class PermanentDeliveryError(DeliveryError):
    """Not sent, and retrying cannot help (invalid address, opted out at the provider)."""


class DeliveryOutcomeUnknownError(DeliveryError):
    """The request may have reached the provider; resending could duplicate the message."""


class EmailTransport(Protocol):
    """Safe to call from several threads at once: a batch sends its e-mails side by side."""

    # True when what it sends reaches people's inboxes (SMTP); the embedded outbox only writes
    # files. A marketing e-mail while clinic.yaml's postal address is a placeholder is held
    # only where it would reach someone (CAN-SPAM, compliance rule 17).
    reaches_inboxes: bool

    def send(self, email: OutgoingEmail) -> str:
        """Send one e-mail; return the provider's id for it."""
        ...

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        """Whether an e-mail whose outcome is unknown left: see :meth:`SmsTransport.find_sent`."""
        ...

    def close(self) -> None:
        """Let go of connections; the transport may be used again afterwards."""
        ...


class SmsTransport(Protocol):
    """Safe to call from several threads at once: a batch sends its texts side by side."""

    def send(self, sms: OutgoingSms) -> str:
        """Send one text; return the provider's id for it."""
        ...

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        """The provider's id of the message to ``to`` with ``body`` (our ``reference``) that it
        accepted since ``since``, for settling an `unknown` row. None means the provider
        answered and has no such message, so it never left and may be sent again; a provider
        that cannot tell raises LookupError, and the row is left for a person."""
        ...

    def close(self) -> None:
        """Let go of connections; the transport may be used again afterwards."""
        ...


# What the FCC Reassigned Numbers Database says of a number since a date (compliance rule 12).
Reassigned = Literal["yes", "no", "no_data"]


@runtime_checkable
class ReassignedLookup(Protocol):
    """An SMS transport that can ask whether a number changed hands (Twilio Lookup v2)."""

    def reassigned_since(self, number: str, since: date) -> Reassigned:
        """ "yes": the number was permanently disconnected on or after ``since`` (the consent
        date), so someone else may have it now; "no": it was not; "no_data": the database
        cannot tell. Raises LookupError when it could not be asked (a timeout, a 5xx)."""
        ...
