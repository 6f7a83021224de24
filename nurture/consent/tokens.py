"""Signed, opaque tokens for links in messages (unsubscribe, preferences).

A token is the lead id and purpose with an HMAC-SHA256 tag under ``NURTURE_SECRET_KEY``; it
carries no expiry because CAN-SPAM wants opt-out links to keep working long after sending.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from nurture.db.models import Purpose

_PURPOSE_CODES = {Purpose.MARKETING: b"m", Purpose.CARE: b"c"}
_CODES_PURPOSE = {code: purpose for purpose, code in _PURPOSE_CODES.items()}
_TAG_BYTES = 16


@dataclass(frozen=True)
class LinkSubject:
    lead_id: uuid.UUID
    purpose: Purpose


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"nurture-link-v1:" + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def sign(secret: bytes, lead_id: uuid.UUID, purpose: Purpose) -> str:
    payload = lead_id.bytes + _PURPOSE_CODES[purpose]
    raw = payload + _tag(secret, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def verify(secret: bytes, token: str) -> LinkSubject | None:
    """The subject of a genuine token, or None for anything forged, altered or malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 17 + _TAG_BYTES:
        return None
    payload, tag = raw[:17], raw[17:]
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    purpose = _CODES_PURPOSE.get(payload[16:17])
    if purpose is None:
        return None
    return LinkSubject(uuid.UUID(bytes=payload[:16]), purpose)
