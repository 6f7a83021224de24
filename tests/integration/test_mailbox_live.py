"""The reply mailbox over real IMAP (issue 13 §2): Debian's Dovecot on loopback, real MIME
delivered into it with APPEND, then the poll the beat runs. A crash between recording a message
and marking it seen must neither lose it nor handle it twice."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from imapclient.exceptions import LoginError  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from nurture.db.models import InboundMessage, MailboxMessage, Message
from nurture.replies import email_replies, mailbox
from nurture.runtime import Services
from tests.support.factories import sign_up
from tests.support.imap_server import ImapServer

LEAD = "ana.rivera@example.com"
SEEN = b"\\Seen"


@pytest.fixture
def imap() -> Iterator[ImapServer]:
    server = ImapServer().start()
    yield server
    server.stop()


def mime(body: str, *, headers: str = "", sender: str = LEAD) -> bytes:
    return (
        f"From: Ana Rivera <{sender}>\r\n"
        "To: replies@clinic.example\r\n"
        "Subject: Re: Welcome\r\n"
        f"Message-ID: <{uuid.uuid4()}@mail.example.com>\r\n"
        "Date: Tue, 03 Mar 2026 18:00:00 +0000\r\n"
        f"{headers}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def poll(services: Services, imap: ImapServer, **kwargs: object) -> mailbox.PollReport:
    return mailbox.poll(
        imap.url,
        services.sessions,
        writer=services.writer,
        keyword_lists=services.policy.keywords,
        **kwargs,  # type: ignore[arg-type]
    )


def count(services: Services, model: type[object], *where: object) -> int:
    with services.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(session.scalar(query) or 0)


def crisis_pages(services: Services) -> int:
    return count(services, Message, Message.template_key == "staff-crisis-page")


def test_replies_auto_replies_and_reports_are_read_and_marked_seen(
    services: Services, imap: ImapServer
) -> None:
    sign_up(services)
    imap.deliver(mime("I want to kill myself"))
    imap.deliver(mime("Away until Monday", headers="Auto-Submitted: auto-replied\r\n"))
    imap.deliver(mime("Can I come at 3 instead?"))
    report = poll(services, imap)
    assert report.handled == 3 and report.kinds == {"reply": 2, "auto_reply": 1}
    assert all(SEEN in flags for flags in imap.flags().values())
    assert count(services, InboundMessage) == 2
    assert crisis_pages(services) == 1
    assert count(services, Message, Message.template_key == "crisis-reply") == 1
    # Nothing new: the next poll reads nothing again.
    again = poll(services, imap)
    assert (again.handled, again.marked) == (0, 0)
    assert count(services, MailboxMessage) == 3


def test_a_crash_after_recording_and_before_seen_neither_loses_nor_doubles(
    services: Services, imap: ImapServer
) -> None:
    sign_up(services)
    imap.deliver(mime("I want to end my life"))
    imap.deliver(mime("Also, is parking free?"))

    def crash(_uid: int) -> None:
        raise ConnectionResetError("the worker died here")

    with pytest.raises(ConnectionResetError):
        poll(services, imap, after_record=crash)
    # Recorded (and acted on) once, still unseen on the server.
    assert count(services, MailboxMessage) == 1
    assert crisis_pages(services) == 1
    assert all(SEEN not in flags for flags in imap.flags().values())

    report = poll(services, imap)
    assert (report.marked, report.handled) == (1, 1)
    assert all(SEEN in flags for flags in imap.flags().values())
    assert count(services, MailboxMessage) == 2
    assert count(services, InboundMessage) == 2
    assert crisis_pages(services) == 1  # the crisis was not handled twice


def test_a_crash_before_the_commit_loses_nothing(
    services: Services, imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(services)
    imap.deliver(mime("I want to die"))
    real = email_replies.handle_mail

    def broken(*args: object, **kwargs: object) -> email_replies.MailResult:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))

    monkeypatch.setattr(email_replies, "handle_mail", broken)
    with pytest.raises(OperationalError):
        poll(services, imap)
    assert count(services, MailboxMessage) == 0 and crisis_pages(services) == 0
    assert all(SEEN not in flags for flags in imap.flags().values())

    monkeypatch.setattr(email_replies, "handle_mail", real)
    assert poll(services, imap).handled == 1
    assert crisis_pages(services) == 1


def test_a_message_that_breaks_the_handling_is_set_aside_for_staff_and_the_rest_go_on(
    services: Services, imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(services)
    imap.deliver(mime("the one that breaks"))
    imap.deliver(mime("I want to die"))
    real = email_replies.handle_mail

    def breaks_once(*args: object, **kwargs: object) -> email_replies.MailResult:
        monkeypatch.setattr(email_replies, "handle_mail", real)
        raise ValueError("a bug about this one message")

    monkeypatch.setattr(email_replies, "handle_mail", breaks_once)
    report = poll(services, imap)
    assert report.kinds == {"unhandled": 1, "reply": 1}
    assert all(SEEN in flags for flags in imap.flags().values())
    assert crisis_pages(services) == 1
    with services.sessions() as session:
        waiting = session.scalars(
            select(InboundMessage).where(InboundMessage.needs_attention.is_(True))
        ).all()
    assert any("could not handle" in (row.attention_reason or "") for row in waiting)


def test_mail_someone_already_opened_in_a_mail_client_is_still_read(
    services: Services, imap: ImapServer
) -> None:
    sign_up(services)
    with imap.client() as client:
        client.append("INBOX", mime("Please stop e-mailing me"), flags=[SEEN])
    assert poll(services, imap).handled == 1
    assert count(services, InboundMessage) == 1


def test_idle_picks_up_mail_that_arrives_during_the_poll(
    services: Services, imap: ImapServer
) -> None:
    sign_up(services)

    def later() -> None:
        time.sleep(1.0)
        imap.deliver(mime("Just arrived"))

    sender = threading.Thread(target=later)
    sender.start()
    started = time.monotonic()
    report = poll(services, imap, idle_seconds=10.0)
    sender.join()
    assert report.handled == 1
    assert time.monotonic() - started < 9  # it returned when the mail came, not at the timeout


def test_a_wrong_password_fails_loudly_and_records_nothing(
    services: Services, imap: ImapServer
) -> None:
    imap.deliver(mime("hello"))
    with pytest.raises(LoginError):
        mailbox.poll(
            imap.url.replace("test-password", "wrong"),
            services.sessions,
            writer=services.writer,
            keyword_lists=services.policy.keywords,
        )
    assert count(services, MailboxMessage) == 0
