"""Deliveries signed exactly as SendGrid, Mailgun and Postmark sign theirs (the SNS side is
tests/support/sns_standin.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAILGUN_KEY = "key-mailgun-test-signing-key"
POSTMARK_USER = "postmark-hook"
POSTMARK_PASSWORD = "postmark-test-password"


@dataclass
class SendGridSigner:
    """SendGrid's Signed Event Webhook: ECDSA P-256 over timestamp + raw body."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        """As Mail Settings shows it: base64 SubjectPublicKeyInfo, no PEM armour."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str) -> dict[str, str]:
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


def sendgrid_event(
    address: str, event: str, *, event_id: str, now: datetime, **more: Any
) -> dict[str, Any]:
    return {
        "email": address,
        "timestamp": int(now.timestamp()),
        "event": event,
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        **more,
    }


def mailgun_body(
    event: dict[str, Any],
    *,
    now: datetime,
    key: str = MAILGUN_KEY,
    token: str | None = None,
) -> bytes:
    token = token or secrets.token_hex(25)  # 50 characters, as Mailgun's
    timestamp = str(int(now.timestamp()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"token": token, "timestamp": timestamp, "signature": signature},
            "event-data": event,
        }
    ).encode()


def mailgun_failed(address: str, *, event_id: str, severity: str, now: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "failed",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": address,
        "timestamp": now.timestamp(),
        "delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "message": "No such user" if severity == "permanent" else "Mailbox full",
        },
        "message": {"headers": {"message-id": "20260303.1@clinic.example"}},
    }


def mailgun_complained(address: str, *, event_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "complained",
        "recipient": address,
        "timestamp": now.timestamp(),
    }


def basic_auth(user: str = POSTMARK_USER, password: str = POSTMARK_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(
    address: str, *, record_id: int, bounce_type: str, type_code: int
) -> dict[str, Any]:
    """Postmark's bounce webhook (postmarkapp.com/developer/webhooks/bounce-webhook)."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": record_id,
        "Type": bounce_type,
        "TypeCode": type_code,
        "Name": "Hard bounce" if type_code == 1 else "Soft bounce",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "Test bounce details",
        "Email": address,
        "From": "clinic@example.org",
        "BouncedAt": "2026-03-03T17:59:00Z",
        "DumpAvailable": True,
        "Inactive": type_code == 1,
        "CanActivate": True,
        "Subject": "Your consult",
        "Metadata": {},
    }


def postmark_complaint(address: str, *, record_id: int) -> dict[str, Any]:
    """Postmark's spam complaint webhook."""
    return {
        **postmark_bounce(address, record_id=record_id, bounce_type="SpamComplaint", type_code=512),
        "RecordType": "SpamComplaint",
        "TypeCode": 100001,
        "Name": "Spam complaint",
    }
