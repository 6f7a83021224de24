"""E-mail over SMTP (stdlib smtplib), configured by ``NURTURE_SMTP_URL``.

``smtp://user:pass@host:587?starttls=true`` or ``smtps://host:465``; no user, no login.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
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
    ) -> None:
        self.endpoint = endpoint
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
        smtp = self._take_idle()
        try:
            if smtp is None:
                smtp = self._connect()
                smtp.send_message(mime)
            else:
                try:
                    smtp.send_message(mime)
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    # The server closed an idle connection: one fresh connection, then it counts.
                    _drop(smtp)
                    smtp = None
                    smtp = self._connect()
                    smtp.send_message(mime)
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
        return str(mime["Message-ID"])


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
