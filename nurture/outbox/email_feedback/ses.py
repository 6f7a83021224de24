"""Amazon SES bounces and complaints, delivered by SNS over HTTPS.

SNS signs each message with RSA (SignatureVersion 1: SHA1, 2: SHA256) over ``key\\nvalue\\n``
lines of named fields; the certificate is fetched from the URL the message names, which must
be an SNS host over HTTPS (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
Hand-written with ``cryptography`` because the PyPI validators do not fit: ``validatesns``
refuses SignatureVersion 2, ``aws-sns-verifier`` needs Python 3.13, and the others are
unmaintained 0.0.x releases.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import threading
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nurture.db.models import EmailFeedbackKind
from nurture.outbox.email_feedback import (
    Feedback,
    FeedbackMalformedError,
    FeedbackRefusedError,
    feedback,
    instant,
    text,
)

PROVIDER = "ses"
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# SNS gives up on a delivery within an hour; an older message is a replay.
MAX_AGE = timedelta(hours=1)
MAX_CERTIFICATE = 64 * 1024
FETCH_TIMEOUT = 10.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the SNS host the URL was checked against."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get(url: str, host_pattern: str, what: str) -> bytes:
    """GET an SNS URL over HTTPS (certificate checked), no redirects. Blocking: call it from a
    worker thread, outside any transaction."""
    if not isinstance(url, str) or not re.match(host_pattern, url):
        raise FeedbackRefusedError(f"ses: the {what} URL is not an SNS host over https")
    opener = urllib.request.build_opener(
        _NoRedirects, urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    try:
        with opener.open(url, timeout=FETCH_TIMEOUT) as response:
            if response.status != 200:
                raise FeedbackRefusedError(f"ses: the {what} URL answered {response.status}")
            body: bytes = response.read(MAX_CERTIFICATE + 1)
    except (URLError, OSError, ValueError) as error:
        raise FeedbackRefusedError(f"ses: could not fetch the {what}: {error}") from None
    return body


class Certificates:
    """SNS signing certificates by URL, fetched once per process (they change rarely, and a
    fetch per message would be one HTTPS round trip each)."""

    def __init__(self) -> None:
        self._by_url: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def get(self, url: str, host_pattern: str) -> x509.Certificate:
        if not isinstance(url, str) or not re.match(host_pattern, url):
            raise FeedbackRefusedError("ses: SigningCertURL is not an SNS host over https")
        with self._lock:
            cached = self._by_url.get(url)
        if cached is not None:
            return cached
        body = _get(url, host_pattern, "signing certificate")
        if len(body) > MAX_CERTIFICATE:
            raise FeedbackRefusedError("ses: the signing certificate is too large")
        try:
            certificate = x509.load_pem_x509_certificate(body)
        except ValueError:
            raise FeedbackRefusedError(
                "ses: SigningCertURL did not give a PEM certificate"
            ) from None
        with self._lock:
            self._by_url[url] = certificate
        return certificate


def parse_envelope(body: bytes) -> dict[str, str]:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        raise FeedbackMalformedError("ses: the body is not an SNS message (JSON)") from None
    if not isinstance(envelope, dict) or not all(
        isinstance(value, str) for value in envelope.values()
    ):
        raise FeedbackMalformedError("ses: the body is not an SNS message (an object of strings)")
    return envelope


def string_to_sign(envelope: dict[str, str]) -> bytes:
    fields = SIGNED_FIELDS.get(envelope.get("Type", ""))
    if fields is None:
        raise FeedbackMalformedError(
            f"ses: unknown SNS message Type {envelope.get('Type', '')[:40]!r}"
        )
    lines = []
    for name in fields:
        if name not in envelope:
            if name == "Subject":  # signed only when present
                continue
            raise FeedbackRefusedError(f"ses: the SNS message has no {name}")
        lines.append(f"{name}\n{envelope[name]}\n")
    return "".join(lines).encode()


def verify(
    envelope: dict[str, str],
    *,
    certificates: Certificates,
    topic_arns: tuple[str, ...],
    host_pattern: str,
    now: datetime,
) -> None:
    """Refuse (FeedbackRefusedError) a message SNS did not sign for one of our topics."""
    if envelope.get("TopicArn") not in topic_arns:
        raise FeedbackRefusedError("ses: the message is for a topic not configured here")
    digest = HASHES.get(envelope.get("SignatureVersion", ""))
    if digest is None:
        raise FeedbackRefusedError("ses: SignatureVersion must be 1 or 2")
    try:
        signature = base64.b64decode(envelope.get("Signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise FeedbackRefusedError("ses: the Signature is not base64") from None
    if not signature:
        raise FeedbackRefusedError("ses: the message is not signed")
    sent = instant(envelope.get("Timestamp"))
    if sent is None or now - sent > MAX_AGE or sent - now > timedelta(minutes=5):
        raise FeedbackRefusedError("ses: the message's Timestamp is not within the last hour")
    signed = string_to_sign(envelope)
    certificate = certificates.get(envelope.get("SigningCertURL", ""), host_pattern)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise FeedbackRefusedError("ses: the signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise FeedbackRefusedError("ses: the signing certificate has no RSA key")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), digest())
    except InvalidSignature:
        raise FeedbackRefusedError("ses: the signature does not match the message") from None


def confirm_subscription(envelope: dict[str, str], *, host_pattern: str) -> None:
    """Confirm a verified SubscriptionConfirmation by GETting its SubscribeURL (an SNS host)."""
    _get(envelope.get("SubscribeURL", ""), host_pattern, "SubscribeURL")


def parse_notification(envelope: dict[str, str]) -> list[Feedback]:
    """The bounces and complaints in a verified Notification (SES's JSON in ``Message``);
    deliveries and other notices give none. The SNS MessageId is the event id: SNS redelivers
    a message with the same one."""
    try:
        notice = json.loads(envelope.get("Message", ""))
    except (ValueError, RecursionError):
        raise FeedbackMalformedError("ses: the Message is not SES's JSON") from None
    if not isinstance(notice, dict):
        raise FeedbackMalformedError("ses: the Message is not an SES notification object")
    kind = notice.get("notificationType") or notice.get("eventType")
    event_id = envelope.get("MessageId")
    if kind == "Bounce":
        bounce = _object(notice.get("bounce"), "bounce")
        bounce_type = text(bounce.get("bounceType"))
        # Permanent: the address will never take mail. Transient and Undetermined only count.
        outcome = (
            EmailFeedbackKind.BOUNCE
            if bounce_type == "Permanent"
            else EmailFeedbackKind.TRANSIENT_BOUNCE
        )
        when = instant(bounce.get("timestamp"))
        return [
            feedback(
                PROVIDER,
                event_id,
                recipient.get("emailAddress"),
                outcome,
                " ".join(
                    part
                    for part in (
                        f"{bounce_type}/{text(bounce.get('bounceSubType'))}",
                        text(recipient.get("status"), 20),
                    )
                    if part
                ),
                when,
            )
            for recipient in _recipients(bounce, "bouncedRecipients")
        ]
    if kind == "Complaint":
        complaint = _object(notice.get("complaint"), "complaint")
        feedback_type = text(complaint.get("complaintFeedbackType"), 40)
        if feedback_type == "not-spam":
            return []  # the recipient said it is not spam: no complaint
        when = instant(complaint.get("timestamp"))
        return [
            feedback(
                PROVIDER,
                event_id,
                recipient.get("emailAddress"),
                EmailFeedbackKind.COMPLAINT,
                f"complaint {feedback_type or 'unspecified'}",
                when,
            )
            for recipient in _recipients(complaint, "complainedRecipients")
        ]
    return []


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FeedbackMalformedError(f"ses: the notification has no {name} object")
    return value


def _recipients(section: dict[str, Any], name: str) -> list[dict[str, Any]]:
    recipients = section.get(name)
    if not isinstance(recipients, list) or not all(isinstance(r, dict) for r in recipients):
        raise FeedbackMalformedError(f"ses: the notification has no {name} list")
    return recipients
