"""E-mail over SMTP (stdlib smtplib), configured by ``NURTURE_SMTP_URL``.

``smtp://user:pass@host:587?starttls=true`` or ``smtps://host:465``; no user, no login.
With ``NURTURE_DKIM_*`` set, every message is DKIM-signed (dkimpy) before it leaves.
"""

from __future__ import annotations

import contextlib
import io
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nurture.config.yamlconf import ConfigError, ConfigProblem
from nurture.transports import (
    OutgoingEmail,
    PermanentDeliveryError,
    TransientDeliveryError,
    header_text,
)
from nurture.transports.email_message import build_mime

_TRUE = {"1", "true", "yes", "on"}
# Signed headers (RFC 6376 §5.4): what a receiver shows or acts on. Gmail and Yahoo act on a
# one-click unsubscribe only when the signature covers List-Unsubscribe and -Post (RFC 8058
# §4); a header named here but absent is signed as absent, so nobody can add it on the way.
DKIM_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"Reply-To",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)
# Gmail refuses shorter keys; 2048 bits is what it recommends.
DKIM_MIN_BITS = 1024


@dataclass(frozen=True)
class DkimSigner:
    """Signs whole messages for one selector and domain, relaxed/simple canonicalisation."""

    selector: str
    domain: str
    private_key: bytes  # PEM

    @classmethod
    def load(cls, selector: str, domain: str, path: Path) -> DkimSigner:
        """Read and check the key now, so a wrong one stops the service at start, not at the
        first send; ConfigError says what is wrong."""

        def problem(reason: str) -> ConfigError:
            return ConfigError([ConfigProblem(path, None, f"NURTURE_DKIM_PRIVATE_KEY: {reason}")])

        try:
            pem = path.read_bytes()
        except OSError as error:
            raise problem(f"cannot read it: {error.strerror or error}") from None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise problem(
                "not an unencrypted PEM private key (make one with "
                "`openssl genrsa -out dkim.pem 2048`)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < DKIM_MIN_BITS:
            raise problem(f"must be an RSA key of at least {DKIM_MIN_BITS} bits")
        signer = cls(selector=selector, domain=domain, private_key=pem)
        try:
            signer.signature(b"From: a@example.org\r\nSubject: check\r\n\r\ncheck\r\n")
        except dkim.DKIMException as error:
            raise problem(f"dkimpy cannot sign with it: {error}") from None
        return signer

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) for a CRLF message."""
        header: bytes = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"simple"),
            include_headers=list(DKIM_HEADERS),
            linesep=b"\r\n",
        )
        return header


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("NURTURE_SMTP_URL must look like smtp://user:pass@host:port")
    query = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    return SmtpEndpoint(
        host=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=query.get("starttls", ["false"])[0].lower() in _TRUE,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _classify(code: int, text: bytes | str, what: str) -> Exception:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    reason = f"SMTP {code} {what}: {detail}".strip()
    if 400 <= code < 500:
        return TransientDeliveryError(reason, code=f"smtp-{code}")
    return PermanentDeliveryError(reason, code=f"smtp-{code}")


class SmtpTransport:
    """Keeps open SMTP connections between messages (a worker sends many in a row), one per
    thread sending at the moment: a batch sends its e-mails side by side, and an SMTP
    conversation cannot be shared. A connection the server closed is replaced once, before the
    message counts as failed."""

    reaches_inboxes = True

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        sender: str,
        reply_to: str | None,
        timeout: float,
        max_idle: int = 8,
        dkim_signer: DkimSigner | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.dkim_signer = dkim_signer
        self.sender = sender
        self.reply_to = reply_to
        self.timeout = timeout
        self.max_idle = max_idle  # connections kept open while no one sends
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()  # guards _idle only, never held over the network

    def _connect(self) -> smtplib.SMTP:
        endpoint = self.endpoint
        smtp: smtplib.SMTP
        if endpoint.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                endpoint.host,
                endpoint.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(endpoint.host, endpoint.port, timeout=self.timeout)
        try:
            if endpoint.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if endpoint.username:
                smtp.login(endpoint.username, endpoint.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        # An SMTP server answers nothing about what it accepted earlier.
        raise LookupError("an SMTP server cannot be asked whether it took a message")

    def _take_idle(self) -> smtplib.SMTP | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _give_back(self, smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(smtp)
                return
        _drop(smtp)

    def send(self, email: OutgoingEmail) -> str:
        mime = build_mime(email, sender=self.sender, reply_to=self.reply_to)
        message_id = str(mime["Message-ID"])
        raw = self._wire_bytes(mime)
        # The envelope is what the headers say (build_mime checked both addresses).
        sender, recipients = header_text.address_of(self.sender), [header_text.address(email.to)]
        smtp = self._take_idle()
        try:
            if smtp is None:
                smtp = self._connect()
                smtp.sendmail(sender, recipients, raw)
            else:
                try:
                    smtp.sendmail(sender, recipients, raw)
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    # The server closed an idle connection: one fresh connection, then it counts.
                    _drop(smtp)
                    smtp = None
                    smtp = self._connect()
                    smtp.sendmail(sender, recipients, raw)
        except smtplib.SMTPRecipientsRefused as error:
            self._give_back(smtp)  # smtplib reset the conversation: the connection is good
            code, text = next(iter(error.recipients.values()))
            raise _classify(code, text, "recipient refused") from None
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the server is closing this connection
                _drop(smtp)
            else:
                self._give_back(smtp)
            raise _classify(error.smtp_code, error.smtp_error, "refused") from None
        except (smtplib.SMTPException, OSError) as error:
            # Connection refused, reset or timed out before the server took the message.
            _drop(smtp)
            raise TransientDeliveryError(f"SMTP unavailable: {error}", code="smtp-io") from None
        self._give_back(smtp)
        return message_id

    def _wire_bytes(self, mime: EmailMessage) -> bytes:
        """The message as it goes on the wire, DKIM-signed when a key is set: serialised once,
        as ``send_message`` would (CRLF), so a signature covers exactly the bytes sent and a
        second connection after a dropped one sends the same bytes without building them
        again. Addresses are plain ASCII (header_text), so SMTPUTF8 is never needed."""
        buffer = io.BytesIO()
        BytesGenerator(buffer, policy=mime.policy).flatten(mime, linesep="\r\n")
        raw = buffer.getvalue()
        if self.dkim_signer is None:
            return raw
        return self.dkim_signer.signature(raw) + raw


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
