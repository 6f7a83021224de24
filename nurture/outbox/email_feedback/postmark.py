"""Postmark's bounce and spam-complaint webhooks. Postmark signs nothing: the webhook URL is
given HTTP basic auth credentials, checked here in constant time.
(postmarkapp.com/developer/webhooks/bounce-webhook, spam-complaint-webhook)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from nurture.db.models import EmailFeedbackKind
from nurture.outbox.email_feedback import (
    Feedback,
    FeedbackMalformedError,
    FeedbackRefusedError,
    feedback,
    instant,
    text,
)

PROVIDER = "postmark"
# Postmark's bounce types (postmarkapp.com/developer/api/bounce-api#bounce-types): these say
# the address will never take mail; the temporary ones only count; the rest (auto-replies,
# subscribe requests, challenge-verification…) are not bounces at all.
PERMANENT = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
TEMPORARY = {"Transient", "SoftBounce", "DnsError", "Blocked", "Unknown"}


def check_auth(header: str, *, user: str, password: str) -> None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise FeedbackRefusedError("postmark: basic auth is missing")
    try:
        given_user, _, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, ValueError):
        raise FeedbackRefusedError("postmark: basic auth is not base64") from None
    # Both compared, always: no early exit that tells a guesser which part was right.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise FeedbackRefusedError("postmark: wrong basic auth credentials")


def parse(body: bytes) -> list[Feedback]:
    try:
        record = json.loads(body)
    except (ValueError, RecursionError):
        raise FeedbackMalformedError("postmark: the body is not JSON") from None
    if not isinstance(record, dict):
        raise FeedbackMalformedError("postmark: the body is not an object")
    record_type = record.get("RecordType")
    bounce_type = record.get("Type")
    if record_type == "SpamComplaint" or bounce_type == "SpamComplaint":
        kind = EmailFeedbackKind.COMPLAINT
    elif record_type not in (None, "Bounce"):
        return []  # deliveries, opens, clicks, subscription changes
    elif bounce_type in PERMANENT:
        kind = EmailFeedbackKind.BOUNCE
    elif bounce_type in TEMPORARY:
        kind = EmailFeedbackKind.TRANSIENT_BOUNCE
    else:
        return []
    if not isinstance(record.get("ID"), int | str):
        raise FeedbackMalformedError("postmark: the record has no ID")
    return [
        feedback(
            PROVIDER,
            f"{record_type or 'Bounce'}:{record.get('ID')}",
            record.get("Email"),
            kind,
            f"{text(bounce_type, 40)} {text(record.get('Description'), 80)}".strip(),
            instant(record.get("BouncedAt")),
        )
    ]
