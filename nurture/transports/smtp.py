"""E-mail over SMTP (stdlib smtplib), configured by ``NURTURE_SMTP_URL``.

``smtp://user:pass@host:587?starttls=true`` or ``smtps://host:465``; no user, no login.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from nurture.transports import (
    OutgoingEmail,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from nurture.transports.email_message import build_mime

_TRUE = {"1", "true", "yes", "on"}


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
    """Keeps one SMTP connection open between messages (a worker sends many in a row);
    a connection the server closed is replaced once, before the message counts as failed."""

    def __init__(
        self, endpoint: SmtpEndpoint, *, sender: str, reply_to: str | None, timeout: float
    ) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self.reply_to = reply_to
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()  # the web process may send tests from several threads

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
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None

    def _deliver(self, mime: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
            self._smtp.send_message(mime)
            return
        try:
            self._smtp.send_message(mime)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            # The server closed an idle connection: one fresh connection, then it counts.
            self._smtp.close()
            self._smtp = self._connect()
            self._smtp.send_message(mime)

    def send(self, email: OutgoingEmail) -> str:
        mime = build_mime(email, sender=self.sender, reply_to=self.reply_to)
        with self._lock:
            try:
                self._deliver(mime)
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()))
                raise _classify(code, text, "recipient refused") from None
            except smtplib.SMTPResponseException as error:
                if error.smtp_code == 421:  # the server is closing this connection
                    self.close()
                raise _classify(error.smtp_code, error.smtp_error, "refused") from None
            except (smtplib.SMTPException, OSError) as error:
                # Connection refused, reset or timed out before the server took the message.
                self._drop()
                raise TransientDeliveryError(f"SMTP unavailable: {error}", code="smtp-io") from None
        return str(mime["Message-ID"])

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
            self._smtp = None
