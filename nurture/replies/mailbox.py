"""Polling the reply mailbox over IMAP (imapclient): each new message recorded, then marked seen.

One poll: log in, select the folder, read every message above the highest UID already recorded
for this UIDVALIDITY and every unseen one, and for each, in UID order: fetch it with
``BODY.PEEK[]`` (fetching does not set ``\\Seen``), record and act on it in one committed
transaction (`email_replies.handle_mail`), and only then set ``\\Seen``. A crash after the
commit leaves the message unseen with its row recorded: the next poll finds the row and only
marks it. A crash before the commit leaves nothing: the next poll handles it. No transaction is
open during a network call. Where the server offers IDLE, the poll then waits up to
``idle_seconds`` for new mail and reads it the same way.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nurture import clock
from nurture.config.policy import Keywords
from nurture.content import Writer
from nurture.db.models import MailboxMessage
from nurture.replies import email_replies, mail_reading
from nurture.replies.email_replies import Place

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
BATCH = 100  # messages per poll at most: a backlog drains over a few polls, never one long one
TIMEOUT = 30.0


class MailboxUrlError(ValueError):
    pass


@dataclass(frozen=True)
class MailboxUrl:
    host: str
    port: int
    tls: bool
    user: str
    password: str = field(repr=False)
    folder: str

    @property
    def key(self) -> str:
        """Which mailbox a recorded UID belongs to (no password in it)."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"[:300]


def parse_url(url: str) -> MailboxUrl:
    """imaps://user:pass@host:993/INBOX (or imap:// on loopback, for tests and local relays)."""
    parts = urlsplit(url)
    if parts.scheme not in {"imap", "imaps"}:
        raise MailboxUrlError("NURTURE_IMAP_URL must start with imaps:// (or imap://)")
    if not parts.hostname or not parts.username or parts.password is None:
        raise MailboxUrlError("NURTURE_IMAP_URL needs a user, a password and a host")
    if parts.scheme == "imap" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise MailboxUrlError("NURTURE_IMAP_URL: plain imap:// only on loopback; use imaps://")
    tls = parts.scheme == "imaps"
    return MailboxUrl(
        host=parts.hostname,
        port=parts.port or (993 if tls else 143),
        tls=tls,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )


@dataclass
class PollReport:
    handled: int = 0  # recorded and acted on by this poll
    marked: int = 0  # already recorded (a crash before \Seen): only marked now
    kinds: dict[str, int] = field(default_factory=dict)


def poll(
    url: str,
    sessions: sessionmaker[Session],
    *,
    writer: Writer,
    keyword_lists: Keywords,
    idle_seconds: float = 0.0,
    after_record: Callable[[int], None] | None = None,
) -> PollReport:
    """Read the mailbox once (and wait in IDLE up to ``idle_seconds`` for more).
    ``after_record(uid)`` runs between the commit and ``\\Seen`` (tests crash there)."""
    address = parse_url(url)
    report = PollReport()
    context = ssl.create_default_context() if address.tls else None
    client = IMAPClient(
        address.host, port=address.port, ssl=address.tls, ssl_context=context, timeout=TIMEOUT
    )
    try:
        client.login(address.user, address.password)
        reader = _Reader(client, address, sessions, writer, keyword_lists, after_record, report)
        reader.drain()
        if idle_seconds > 0 and client.has_capability("IDLE"):
            client.idle()
            try:
                arrived = client.idle_check(timeout=idle_seconds)
            finally:
                client.idle_done()
            if arrived:
                reader.drain()
    finally:
        try:
            client.logout()
        except Exception:  # the connection may already be gone
            log.debug("IMAP logout failed", exc_info=True)
    return report


@dataclass
class _Reader:
    client: Any
    address: MailboxUrl
    sessions: sessionmaker[Session]
    writer: Writer
    keyword_lists: Keywords
    after_record: Callable[[int], None] | None
    report: PollReport

    def drain(self) -> None:
        selected = self.client.select_folder(self.address.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        with self.sessions() as session:  # a read, closed before the network is used again
            last = session.scalar(
                select(func.max(MailboxMessage.uid)).where(
                    MailboxMessage.mailbox == self.address.key,
                    MailboxMessage.uidvalidity == uidvalidity,
                )
            )
        last = int(last or 0)
        # "n:*" always answers the newest message, even one below n: filter again.
        newer = {int(uid) for uid in self.client.search(["UID", f"{last + 1}:*"]) if uid > last}
        unseen = {int(uid) for uid in self.client.search(["UNSEEN"])}
        for uid in sorted(newer | unseen)[:BATCH]:
            self._one(Place(self.address.key, uidvalidity, uid))

    def _one(self, place: Place) -> None:
        fetched = self.client.fetch([place.uid], [b"BODY.PEEK[]"])
        raw = fetched.get(place.uid, {}).get(b"BODY[]")
        if not isinstance(raw, bytes):
            return  # expunged meanwhile
        mail = mail_reading.read(raw)
        try:
            with self.sessions.begin() as session:
                result = email_replies.handle_mail(
                    session,
                    mail,
                    place,
                    writer=self.writer,
                    keyword_lists=self.keyword_lists,
                    now=clock.utcnow(),
                )
        except IntegrityError:
            # Another poll recorded this place first (overlapping beats): it is handled.
            result = email_replies.MailResult("recorded")
        except SQLAlchemyError as error:
            if isinstance(error, OperationalError | InterfaceError):
                raise  # the database is away: nothing recorded, the next poll tries again
            result = self._set_aside(mail, place, error)
        except Exception as error:  # a bug on this message must not stop the mailbox
            result = self._set_aside(mail, place, error)
        if result.kind == "recorded":
            self.report.marked += 1
        else:
            self.report.handled += 1
            self.report.kinds[result.kind] = self.report.kinds.get(result.kind, 0) + 1
        if self.after_record is not None:
            self.after_record(place.uid)
        self.client.add_flags([place.uid], [SEEN])

    def _set_aside(
        self, mail: mail_reading.IncomingMail, place: Place, error: Exception
    ) -> email_replies.MailResult:
        """Record the message as one a person must read (if even that fails, re-raise: it
        stays unseen and is tried again)."""
        # The type only: an error's text may quote the mail (an address, what they wrote).
        log.error("reply mailbox uid %s set aside for staff: %s", place.uid, type(error).__name__)
        with self.sessions.begin() as session:
            return email_replies.record_unhandled(
                session, mail, place, error=type(error).__name__, now=clock.utcnow()
            )
