"""SendGrid's Event Webhook, signed (ECDSA P-256, SHA-256) over the timestamp header followed
by the raw body; the public key is the base64 SubjectPublicKeyInfo Mail Settings shows.
(twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features)

Checked with ``cryptography`` rather than the ``sendgrid`` package's helper, which would bring
the whole API client and a second ECDSA implementation for these few lines.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nurture.db.models import EmailFeedbackKind
from nurture.outbox.email_feedback import (
    Feedback,
    FeedbackMalformedError,
    FeedbackRefusedError,
    feedback,
    instant,
    text,
)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


def public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """The configured key, or ValueError saying what is wrong with it."""
    try:
        der = base64.b64decode(configured.strip(), validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError):
        raise ValueError(
            "NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not the base64 public key SendGrid shows"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 (ECDSA) key")
    return key


def verify(key: ec.EllipticCurvePublicKey, *, signature: str, timestamp: str, body: bytes) -> None:
    if not signature or not timestamp:
        raise FeedbackRefusedError("sendgrid: the signature or timestamp header is missing")
    try:
        der_signature = base64.b64decode(signature, validate=True)
        key.verify(der_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise FeedbackRefusedError("sendgrid: the signature does not match the body") from None


def parse(body: bytes) -> list[Feedback]:
    """Bounces and spam reports in a batch (a JSON array); other events give nothing. A
    ``bounce`` of type ``blocked`` is temporary (the receiver refused for now) and only counts.
    ``sg_event_id`` is unique per event: the dedup key."""
    try:
        events = json.loads(body)
    except (ValueError, RecursionError):
        raise FeedbackMalformedError("sendgrid: the body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise FeedbackMalformedError("sendgrid: the body is not an array of events")
    found = []
    for event in events:
        kind = _kind(event)
        if kind is not None:
            found.append(
                feedback(
                    PROVIDER,
                    event.get("sg_event_id"),
                    event.get("email"),
                    kind,
                    " ".join(
                        part
                        for part in (text(event.get("event"), 20), text(event.get("type"), 20))
                        if part
                    )
                    + (f": {text(event.get('status'), 20)}" if event.get("status") else ""),
                    instant(event.get("timestamp")),
                )
            )
    return found


def _kind(event: dict[str, Any]) -> EmailFeedbackKind | None:
    name = event.get("event")
    if name == "spamreport":
        return EmailFeedbackKind.COMPLAINT
    if name == "bounce":
        if event.get("type") == "blocked":
            return EmailFeedbackKind.TRANSIENT_BOUNCE
        return EmailFeedbackKind.BOUNCE
    return None
