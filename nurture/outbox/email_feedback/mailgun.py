"""Mailgun webhooks: the signature is in the JSON body, a hex HMAC-SHA256 of timestamp + token
with the webhook signing key. It does not cover the event, so a token may be used once only
(nurture.outbox.email_feedback.record.use_token) and a stale timestamp is refused.
(documentation.mailgun.com, "Securing webhooks")
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nurture.db.models import EmailFeedbackKind
from nurture.outbox.email_feedback import (
    Feedback,
    FeedbackMalformedError,
    FeedbackRefusedError,
    feedback,
    instant,
    text,
)

PROVIDER = "mailgun"
# Mailgun names no window; a day outlasts its retries of a delivery, and tokens are kept longer.
MAX_AGE = timedelta(days=1)
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    token: str
    event: dict[str, Any]


def parse_and_verify(body: bytes, *, signing_key: str, now: datetime) -> Delivery:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise FeedbackMalformedError("mailgun: the body is not JSON") from None
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        raise FeedbackRefusedError("mailgun: the body has no signature object")
    token, timestamp, digest = (signature.get(k) for k in ("token", "timestamp", "signature"))
    if not (
        isinstance(token, str)
        and isinstance(timestamp, str)
        and isinstance(digest, str)
        and token
        and timestamp
        and digest
    ):
        raise FeedbackRefusedError("mailgun: the signature needs token, timestamp and signature")
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, digest.lower()):
        raise FeedbackRefusedError("mailgun: the signature does not match")
    signed_at = instant(int(timestamp)) if timestamp.isdecimal() and len(timestamp) < 12 else None
    if signed_at is None or now - signed_at > MAX_AGE or signed_at - now > MAX_SKEW:
        raise FeedbackRefusedError("mailgun: the signature's timestamp is not recent")
    if len(token) > 255:
        raise FeedbackRefusedError("mailgun: the token is too long")
    event = payload.get("event-data")
    if not isinstance(event, dict):
        raise FeedbackMalformedError("mailgun: the body has no event-data object")
    return Delivery(token=token, event=event)


def parse(event: dict[str, Any]) -> list[Feedback]:
    """``failed`` with severity ``permanent`` is a bounce, ``temporary`` only counts;
    ``complained`` is a complaint. ``event-data.id`` is the dedup key."""
    name = event.get("event")
    if name == "complained":
        kind = EmailFeedbackKind.COMPLAINT
        detail = "complained"
    elif name == "failed":
        severity = event.get("severity")
        kind = (
            EmailFeedbackKind.BOUNCE
            if severity == "permanent"
            else EmailFeedbackKind.TRANSIENT_BOUNCE
        )
        status = event.get("delivery-status")
        code = status.get("code") if isinstance(status, dict) else None
        detail = f"failed {text(severity, 20)}" + (f" {code}" if isinstance(code, int) else "")
    else:
        return []
    return [
        feedback(
            PROVIDER,
            event.get("id"),
            event.get("recipient"),
            kind,
            detail,
            instant(event.get("timestamp")),
        )
    ]
