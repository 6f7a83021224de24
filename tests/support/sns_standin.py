"""A stand-in for Amazon SNS's HTTPS side: a test CA, a TLS server on loopback serving the
signing certificate and answering SubscribeURL, and messages signed exactly as SNS signs them
(RSA over the ``key\\nvalue\\n`` lines; SignatureVersion 1 SHA1, 2 SHA256).

The server's certificate is issued by the test CA; clients trust it through ``SSL_CERT_FILE``
(OpenSSL's default verify path), and nurture's SNS host check is pointed at it through
``NURTURE_SNS_HOST_PATTERN``: the real pattern allows only sns.<region>.amazonaws.com.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from nurture.outbox.email_feedback.ses import string_to_sign

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
CERT_PATH = "/SimpleNotificationService-test.pem"
# Valid around the tests' frozen clock (2026-03-03) and the machine's own (for TLS).
NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2029, 1, 1, tzinfo=UTC)


@cache
def _key(name: str) -> rsa.RSAPrivateKey:
    """One key per role for the whole run: RSA key generation is the slow part of a test."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    ip: str | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class SnsStandIn:
    directory: Path
    subscribed: list[str] = field(default_factory=list)  # paths+queries GETted at SubscribeURL
    certificate_fetches: int = 0

    def __post_init__(self) -> None:
        ca_key = _key("ca")
        self.ca = _issue("nurture test CA", ca_key, None, ca_key, ca=True)
        server_key = _key("server")
        server_cert = _issue(
            "127.0.0.1", server_key, self.ca.subject, ca_key, ca=False, ip="127.0.0.1"
        )
        self.signing_key = _key("signing")
        self.signing_cert = _issue("sns.test", self.signing_key, self.ca.subject, ca_key, ca=False)
        self.ca_file = self.directory / "sns-test-ca.pem"
        self.ca_file.write_bytes(_pem(self.ca))
        chain = self.directory / "sns-test-server.pem"
        chain.write_bytes(
            _pem(server_cert)
            + server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == CERT_PATH:
                    standin.certificate_fetches += 1
                    body = _pem(standin.signing_cert)
                elif self.path.startswith("/subscribe"):
                    standin.subscribed.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    @property
    def host_pattern(self) -> str:
        return rf"^https://127\.0\.0\.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(
        self, envelope: dict[str, str], version: str = "2", *, forged: bool = False
    ) -> dict[str, str]:
        """Signed as SNS signs; ``forged``: with a key that is not the certificate's."""
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 (SNS v1)
        signed = {**envelope, "SignatureVersion": version}
        key = _key("forger") if forged else self.signing_key
        signature = key.sign(string_to_sign(signed), padding.PKCS1v15(), digest)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def envelope(
        self, message: dict[str, Any], *, now: datetime, message_id: str | None = None
    ) -> dict[str, str]:
        """An SNS Notification carrying an SES notification, unsigned."""
        return {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": TOPIC_ARN,
            "Message": json.dumps(message),
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "SigningCertURL": self.base_url + CERT_PATH,
            "UnsubscribeURL": self.base_url + "/unsubscribe?token=x",
        }

    def confirmation(self, *, now: datetime, token: str = "tok-1") -> dict[str, str]:  # noqa: S107
        return {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": TOPIC_ARN,
            "Message": "You have chosen to subscribe to the topic. "
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": f"{self.base_url}/subscribe?Action=ConfirmSubscription&Token={token}",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "SigningCertURL": self.base_url + CERT_PATH,
        }


@contextmanager
def sns_standin(directory: Path) -> Iterator[SnsStandIn]:
    standin = SnsStandIn(directory)
    try:
        yield standin
    finally:
        standin.stop()


def ses_bounce(
    address: str, bounce_type: str = "Permanent", sub_type: str = "General"
) -> dict[str, Any]:
    """An SES bounce notification, shaped as
    docs.aws.amazon.com/ses/latest/dg/notification-examples.html shows."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-03-03T17:59:38.237Z",
            "feedbackId": "00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-03-03T17:59:37.000Z",
            "messageId": "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
            "source": "clinic@example.org",
            "destination": [address],
        },
    }


def ses_complaint(address: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": "2026-03-03T17:59:38.237Z",
            "feedbackId": "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
            "complaintFeedbackType": "abuse",
            "userAgent": "Mozilla/5.0",
        },
        "mail": {
            "timestamp": "2026-03-03T17:59:37.000Z",
            "messageId": "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
            "source": "clinic@example.org",
            "destination": [address],
        },
    }
