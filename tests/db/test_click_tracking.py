"""First-party click tracking (issue 15 §2) end to end: a sequence e-mail sent through the outbox's
file transport carries /r/ links in both parts, its opt-out link and List-Unsubscribe header stay
direct, a click lands on the stored URL and is counted, an altered token is a 404."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select, update

from nurture import clock
from nurture.content import tracked_links
from nurture.content.samples import sample_leads
from nurture.content.sms_encoding import measure
from nurture.db.models import Channel, LinkClick, Message, MessageStatus
from nurture.funnel import clicks
from nurture.leads import pending
from nurture.outbox import send
from nurture.preview import drafts
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.db.test_admin_pages import program
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.smtp_server import SmtpServer

__all__ = ["program"]
PUBLIC = "https://nurture.test"
BOOK = "https://kiidaho.example/book"
TRACKED = re.compile(re.escape(PUBLIC) + r"/r/[A-Za-z0-9_-]{20}")


def part(mail: EmailMessage, kind: str) -> str:
    """The text of an e-mail's html or plain part."""
    body = mail.get_body((kind,))
    assert body is not None, f"no {kind} part"
    return str(body.get_content())


def _due_now(services: Services, lead_id: Any, step: str) -> int:
    with services.sessions.begin() as session:
        [message] = [m for m in messages_of(session, lead_id) if m.step_key == step]
        session.execute(
            update(Message).where(Message.id == message.id).values(due_at=clock.utcnow())
        )
        return message.id


def read_a_minute_later(services: Services) -> None:
    """As if the person opened what was sent a minute after it left: a follow moments after
    the send is a mail scanner's, not a click (clicks.MACHINE_WINDOW)."""
    with services.sessions.begin() as session:
        for message in session.scalars(select(Message).where(Message.sent_at.is_not(None))):
            assert message.sent_at is not None
            message.sent_at -= timedelta(minutes=1)


def _clicks(services: Services) -> list[LinkClick]:
    with services.sessions() as session:
        return list(session.scalars(select(LinkClick).order_by(LinkClick.id)))


def test_a_sent_email_carries_tracked_links_and_a_click_lands_on_the_stored_url(
    services: Services, outbox: Path
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    [mail] = [m for m in outbox_files.emails(outbox) if "consultation request" in m["Subject"]]
    html = part(mail, "html")
    text = part(mail, "plain")
    assert BOOK not in html and BOOK not in text  # the booking link goes through /r/
    [in_html] = TRACKED.findall(html)
    [in_text] = TRACKED.findall(text)
    assert in_html == in_text  # one link, one index, in both parts
    with services.sessions() as session:
        [welcome] = [m for m in messages_of(session, lead_id) if m.step_key == "welcome"]
        assert welcome.context[tracked_links.CONTEXT_KEY] == [BOOK]
        assert TRACKED.search(welcome.body or "")  # what the lead received
    # Staff reading it on the lead page see where the link leads: their click is not the lead's.
    shown = pending.body_of(welcome, retention_days=90, public_url=PUBLIC).text or ""
    assert BOOK in shown and not TRACKED.search(shown)

    read_a_minute_later(services)
    with TestClient(create_app(services), base_url=PUBLIC) as client:
        for _ in range(2):  # every click is recorded: the funnel counts distinct leads
            response = client.get(in_html.removeprefix(PUBLIC), follow_redirects=False)
            assert response.status_code == 303
            assert response.headers["location"] == BOOK
            assert response.headers["referrer-policy"] == "no-referrer"
    clicks = _clicks(services)
    assert [(c.message_id, c.lead_id, c.url) for c in clicks] == [(welcome.id, lead_id, BOOK)] * 2


def test_opt_out_links_and_the_one_click_header_stay_direct(
    services: Services, outbox: Path
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    _due_now(services, lead_id, "follow-up")  # the marketing e-mail, two days on
    claim_and_send_all(services)
    [mail] = [m for m in outbox_files.emails(outbox) if m["List-Unsubscribe"]]
    unsubscribe = re.search(re.escape(PUBLIC) + r"/u/[A-Za-z0-9_-]+", mail["List-Unsubscribe"])
    assert unsubscribe is not None
    html = part(mail, "html")
    text = part(mail, "plain")
    assert f'href="{unsubscribe.group(0)}"' in html
    assert f"Unsubscribe or choose what you receive: {unsubscribe.group(0)}" in text
    assert "/r/" not in mail["List-Unsubscribe"]


def test_altered_or_unknown_tokens_are_a_404_and_never_redirect(services: Services) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    with services.sessions() as session:
        [welcome] = [m for m in messages_of(session, lead_id) if m.step_key == "welcome"]
    secret = services.secret
    genuine = tracked_links.sign(secret, welcome.id, 0)
    flipped = ("B" if genuine[5] == "A" else "A").join((genuine[:5], genuine[6:]))
    tokens = [
        flipped,  # altered
        tracked_links.sign(b"not the secret", welcome.id, 0),  # forged
        tracked_links.sign(secret, welcome.id, 1),  # genuine, but the message has one link
        tracked_links.sign(secret, welcome.id + 1000, 0),  # genuine, no such message
        "aHR0cHM6Ly9ldmlsLmV4YW1w",  # base64 of a URL: never where it leads
    ]
    with TestClient(create_app(services), base_url=PUBLIC) as client:
        for token in tokens:
            response = client.get(f"/r/{token}", follow_redirects=False)
            assert response.status_code == 404, token
            assert "location" not in response.headers
            assert "This link does not work" in response.text
    assert _clicks(services) == []


def test_a_text_sent_is_as_long_as_the_studio_counted(program: Services) -> None:
    """The studio's counter measures the text with a tracked link of the real length."""
    settings_outbox = program.settings.resolved_outbox_dir
    lead_id = sign_up(program)
    claim_and_send_all(program)
    before = len(outbox_files.texts(settings_outbox))
    message_id = _due_now(program, lead_id, "booking-nudge-sms")
    claim_and_send_all(program)
    sent = outbox_files.texts(settings_outbox)[before:]
    assert len(sent) == 1, "the booking text did not go"
    body = sent[0].body
    assert TRACKED.search(body) and BOOK not in body
    source = drafts.live(program.studio, Channel.SMS, "booking-nudge").source
    label, lead = next(iter(sample_leads().items()))
    shown = drafts.preview(program.studio, Channel.SMS, "booking-nudge", source, lead)
    assert TRACKED.search(shown.text), label
    assert len(shown.text) == len(body)
    assert shown.sms == measure(body)
    with program.sessions() as session:
        stored = session.get(Message, message_id)
        assert stored is not None and stored.body == body
        assert stored.context[tracked_links.CONTEXT_KEY] == [BOOK]


def test_a_resend_keeps_the_indexes_an_earlier_attempt_handed_out(
    services: Services, outbox: Path
) -> None:
    """A row sent again (back to queued, e.g. after a transient error) renders again: a link
    the earlier attempt stored keeps its index, so that attempt's tokens still land."""
    lead_id = sign_up(services)
    claim_and_send_all(services)
    with services.sessions.begin() as session:
        [welcome] = [m for m in messages_of(session, lead_id) if m.step_key == "welcome"]
        session.execute(
            update(Message)
            .where(Message.id == welcome.id)
            .values(
                status=MessageStatus.QUEUED,
                context={tracked_links.CONTEXT_KEY: ["https://earlier.example/", BOOK]},
            )
        )
    with services.sessions() as session:
        send.send_batch(session, [welcome.id], services.send_path)
    with services.sessions() as session:
        again = session.get(Message, welcome.id)
        assert again is not None
        assert again.context[tracked_links.CONTEXT_KEY] == ["https://earlier.example/", BOOK]
    [token] = {t.rsplit("/", 1)[1] for t in TRACKED.findall(again.body or "")}
    assert tracked_links.verify(services.secret, token) == tracked_links.LinkRef(welcome.id, 1)


def test_over_smtp_after_a_transient_refusal_the_links_are_the_same(
    make_settings: SettingsFactory, smtp_server: SmtpServer
) -> None:
    """The e-mail the SMTP server receives, on the second attempt, carries the /r/ link the
    first attempt stored: same message, same index, same token."""
    services = build_services(make_settings(email_backend="smtp", smtp_url=smtp_server.url))
    try:
        with freeze_time("2026-03-02 16:00:00") as frozen:  # a Monday, 09:00 in Boise
            lead_id = sign_up(services, phone=None, consent={"email_marketing": True})
            smtp_server.refuse_next("451 4.3.0 mailbox busy, try later")
            claim_and_send_all(services)
            with services.sessions() as session:
                [first] = [m for m in messages_of(session, lead_id) if m.step_key == "welcome"]
            assert first.status is MessageStatus.SCHEDULED  # to be tried again
            frozen.tick(timedelta(minutes=1))
            claim_and_send_all(services)
            [received] = smtp_server.wait_for(1)
        html = part(received.message, "html")
        [link] = set(TRACKED.findall(html))
        token = link.rsplit("/", 1)[1]
        assert tracked_links.verify(services.secret, token) == tracked_links.LinkRef(first.id, 0)
        assert first.body is not None and link in first.body  # the first attempt's own link
        with services.sessions() as session:
            sent = session.get_one(Message, first.id)
            assert sent.status is MessageStatus.SENT
            assert sent.context[tracked_links.CONTEXT_KEY] == [BOOK]
    finally:
        services.close()


def test_what_a_machine_fetches_is_redirected_but_not_a_click(services: Services) -> None:
    """A mail scanner fetches every link on delivery, some with HEAD; a phone fetches a text's
    link for its preview. Each is redirected like a person, and none is counted, until a
    person could have read the message."""
    sign_up(services)
    claim_and_send_all(services)
    with services.sessions() as session:
        [welcome] = [m for m in session.scalars(select(Message)) if m.step_key == "welcome"]
    token = tracked_links.sign(services.secret, welcome.id, 0)
    with TestClient(create_app(services), base_url=PUBLIC) as client:

        def follow(method: str) -> None:
            response = client.request(method, f"/r/{token}", follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (303, BOOK)

        follow("GET")  # at once: a scanner's
        follow("HEAD")
        assert _clicks(services) == []
        with freeze_time(clock.utcnow() + clicks.MACHINE_WINDOW, tick=True):
            follow("HEAD")  # a link checker's, however late
            assert _clicks(services) == []
            follow("GET")  # a person, ten seconds on
        assert [c.message_id for c in _clicks(services)] == [welcome.id]
