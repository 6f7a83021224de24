"""How messages leave: SMTP and Twilio in production, files in ``var/outbox/`` when embedded.

Every transport raises one of three errors, because the dispatcher must know whether the
message may have left: :class:`TransientDeliveryError` (it did not; try later),
:class:`PermanentDeliveryError` (it did not and never will) and
:class:`DeliveryOutcomeUnknownError` (it may have: never resend automatically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    reference: str  # our message id, for file names and logs
    headers: dict[str, str] = field(default_factory=dict)


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
