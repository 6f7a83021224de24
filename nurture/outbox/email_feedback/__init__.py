"""Bounces and complaints reported by e-mail providers (issue 13 §3).

One module per provider reads its wire format and checks its signature (``ses``, ``sendgrid``,
``mailgun``, ``postmark``); each turns a delivery into :class:`Feedback` items, one per
address. ``record`` stores them once per provider event id and suppresses the address for a
permanent bounce or a complaint; ``rates`` counts them against e-mail sent and pauses marketing
e-mail past the policy's rates. Nothing here speaks HTTP: the web layer hands in raw bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nurture.db.models import EmailFeedbackKind

MAX_ADDRESS = 320
MAX_EVENT_ID = 255
MAX_DETAIL = 500


class FeedbackRefusedError(ValueError):
    """The delivery is not provably from the provider (signature, credentials, replay): 403."""


class FeedbackMalformedError(ValueError):
    """The delivery is signed but not in the provider's documented shape: 422."""


@dataclass(frozen=True)
class Feedback:
    provider: str
    event_id: str
    address: str
    kind: EmailFeedbackKind
    detail: str
    occurred_at: datetime | None


def feedback(
    provider: str,
    event_id: object,
    address: object,
    kind: EmailFeedbackKind,
    detail: str,
    occurred_at: datetime | None,
) -> Feedback:
    """A Feedback from a provider's fields, refusing what cannot be one (no id, no address)."""
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or str(event_id) == "":
        raise FeedbackMalformedError(f"{provider}: an event without an id")
    if not isinstance(address, str) or "@" not in address or len(address) > MAX_ADDRESS:
        raise FeedbackMalformedError(
            f"{provider}: event {str(event_id)[:80]} has no e-mail address"
        )
    if len(str(event_id)) > MAX_EVENT_ID:
        raise FeedbackMalformedError(
            f"{provider}: an event id longer than {MAX_EVENT_ID} characters"
        )
    return Feedback(
        provider=provider,
        event_id=str(event_id),
        address=address.strip().lower(),
        kind=kind,
        detail=detail[:MAX_DETAIL],
        occurred_at=occurred_at,
    )


def instant(value: object) -> datetime | None:
    """A provider's timestamp (ISO 8601 or Unix seconds) as aware UTC; None if unreadable."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def text(value: object, limit: int = 120) -> str:
    """A provider's free-text field, trimmed to fit a detail line."""
    return value.strip()[:limit] if isinstance(value, str) else ""
