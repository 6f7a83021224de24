"""Issue 14, "Leads": one message from the lead page. Open what was sent (the stored body, as
text); cancel one pending message (audited, 409 once it is not pending); send one now, which
only makes it due: the real dispatcher and every gate decide, in the lead's zone, and it goes
exactly once."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from sqlalchemy import select, update

from nurture import clock
from nurture.db.models import AuditEvent, Channel, Message, MessageStatus, Purpose
from nurture.leads import pending
from nurture.outbox import dispatch, send
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, sign_in, text_of
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up

__all__ = ["app"]  # the admin pages' app fixture


@pytest.fixture
def ops(app: FastAPI, services: Services) -> Browser:
    return sign_in(app, services, "ops")


def step(services: Services, lead_id: uuid.UUID, key: str) -> Message:
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.step_key == key)


def audit_of(services: Services, message_id: int) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.message_id == message_id)
                .order_by(AuditEvent.id)
            )
        )


# Opening what was sent ---------------------------------------------------------------------------


def test_a_sent_text_and_email_open_with_their_stored_bodies(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    text, welcome = (
        step(services, lead_id, "optin-confirmation"),
        step(services, lead_id, "welcome"),
    )
    assert text.status is MessageStatus.SENT and welcome.status is MessageStatus.SENT
    [outgoing] = outbox_files.texts(services.settings.resolved_outbox_dir)

    lead_page = ops.get(f"/admin/leads/{lead_id}")
    assert f'href="/admin/leads/{lead_id}/messages/{text.id}"' in lead_page.text
    opened = ops.get(f"/admin/leads/{lead_id}/messages/{text.id}")
    assert opened.status_code == 200
    # What the page shows is exactly what the provider was given.
    shown = re.search(r"<pre class=\"sent-body\" data-sent-body>(.*?)</pre>", opened.text, re.S)
    assert shown is not None
    assert html.unescape(shown.group(1)) == text.body == outgoing.body

    mail = ops.get(f"/admin/leads/{lead_id}/messages/{welcome.id}")
    assert mail.status_code == 200
    assert welcome.subject is not None and welcome.subject in text_of(mail)
    # The stored body, its tracked links shown as where they lead (a staff click is no lead's).
    assert welcome.body is not None and "/r/" in welcome.body
    untracked = pending.body_of(
        welcome, retention_days=90, public_url=services.settings.public_url
    ).text
    assert untracked is not None and untracked.strip() in text_of(mail)
    assert f"{services.settings.public_url}/r/" not in text_of(mail)
    assert "The HTML part is rendered at sending and not kept" in text_of(mail)
    viewed = [e for e in audit_of(services, welcome.id) if e.action == "message.viewed"]
    assert [e.actor for e in viewed] == [ops.actor]


def test_a_stored_body_is_shown_as_text_never_as_markup(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    welcome = step(services, lead_id, "welcome")
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == welcome.id)
            .values(body="<script>alert(1)</script><b>hi</b>", subject="<i>s</i>")
        )
    page = ops.get(f"/admin/leads/{lead_id}/messages/{welcome.id}")
    assert "<script>alert(1)</script>" not in page.text and "<i>s</i>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in page.text


def test_a_message_with_no_stored_body_says_why(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    follow_up = step(services, lead_id, "follow-up")  # due in two days: never written out
    page = ops.get(f"/admin/leads/{lead_id}/messages/{follow_up.id}")
    assert page.status_code == 200
    assert "nothing was sent" in text_of(page) and "data-sent-body" not in page.text


def test_another_leads_message_is_a_404(services: Services, ops: Browser) -> None:
    ana = sign_up(services)
    bo = sign_up(services, first_name="Bo", email="bo@example.com", phone="+12085550145")
    bos_message = step(services, bo, "welcome")
    assert ops.get(f"/admin/leads/{ana}/messages/{bos_message.id}").status_code == 404
    token = ops.csrf(f"/admin/leads/{ana}")
    refused = ops.post(f"/admin/leads/{ana}/messages/{bos_message.id}/cancel", csrf=token)
    assert refused.status_code == 404
    assert step(services, bo, "welcome").status is MessageStatus.SCHEDULED


# Cancel ------------------------------------------------------------------------------------------


def test_cancel_moves_only_that_pending_message_and_is_audited(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    follow_up = step(services, lead_id, "follow-up")
    others = {m.id: m.status for m in messages_of_lead(services, lead_id) if m.id != follow_up.id}
    token = ops.csrf(f"/admin/leads/{lead_id}")

    assert ops.post(f"/admin/leads/{lead_id}/messages/{follow_up.id}/cancel").status_code == 403
    assert step(services, lead_id, "follow-up").status is MessageStatus.SCHEDULED

    done = ops.post(f"/admin/leads/{lead_id}/messages/{follow_up.id}/cancel", csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=cancelled#messages"
    cancelled = step(services, lead_id, "follow-up")
    assert cancelled.status is MessageStatus.CANCELLED
    assert cancelled.last_error == f"cancelled by {ops.actor}"
    assert {
        m.id: m.status for m in messages_of_lead(services, lead_id) if m.id != follow_up.id
    } == (others)
    [entry] = [e for e in audit_of(services, follow_up.id) if e.action == "message.cancelled"]
    assert entry.actor == ops.actor and entry.lead_id == lead_id
    assert entry.details == {"reason": f"cancelled by {ops.actor}", "was": "scheduled"}
    assert "Message cancelled." in text_of(ops.get(done.headers["location"]))

    # Cancelled is not pending: a second cancel is a conflict, not a second entry.
    again = ops.post(f"/admin/leads/{lead_id}/messages/{follow_up.id}/cancel", csrf=token)
    assert again.status_code == 409
    assert "is cancelled now" in text_of(again)


def test_a_queued_message_can_be_cancelled_and_the_worker_then_leaves_it(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    text = step(services, lead_id, "optin-confirmation")
    assert text.status is MessageStatus.QUEUED
    token = ops.csrf(f"/admin/leads/{lead_id}")
    assert (
        ops.post(f"/admin/leads/{lead_id}/messages/{text.id}/cancel", csrf=token).status_code == 303
    )
    # The task published before the cancel still runs: it finds the row not queued.
    for _channel, ids in dispatch.batches(claimed, send.BATCH_SIZE):
        with services.sessions() as session:
            send.send_batch(session, ids, services.send_path)
    assert step(services, lead_id, "optin-confirmation").status is MessageStatus.CANCELLED
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []


def test_cancelling_a_sent_message_is_a_409_and_changes_nothing(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    text = step(services, lead_id, "optin-confirmation")
    assert text.status is MessageStatus.SENT
    token = ops.csrf(f"/admin/leads/{lead_id}")
    for action in ("cancel", "send-now"):
        refused = ops.post(f"/admin/leads/{lead_id}/messages/{text.id}/{action}", csrf=token)
        assert refused.status_code == 409
        assert "is sent now" in text_of(refused)
    assert step(services, lead_id, "optin-confirmation").status is MessageStatus.SENT
    actions = {e.action for e in audit_of(services, text.id)}
    assert not actions & {"message.cancelled", "message.send_now"}


def messages_of_lead(services: Services, lead_id: uuid.UUID) -> list[Message]:
    with services.sessions() as session:
        return messages_of(session, lead_id)


# Send now ----------------------------------------------------------------------------------------


def test_send_now_outside_quiet_hours_goes_out_exactly_once_through_dispatch(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)  # the opt-in text and the welcome go
    follow_up = step(services, lead_id, "follow-up")
    assert follow_up.status is MessageStatus.SCHEDULED and follow_up.due_at > clock.utcnow()
    token = ops.csrf(f"/admin/leads/{lead_id}")

    done = ops.post(f"/admin/leads/{lead_id}/messages/{follow_up.id}/send-now", csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == (
        f"/admin/leads/{lead_id}?notice=send-now&message={follow_up.id}#messages"
    )
    due = step(services, lead_id, "follow-up")
    assert due.status is MessageStatus.SCHEDULED and due.due_at <= clock.utcnow()
    notice = text_of(ops.get(done.headers["location"]))
    assert f"Message {follow_up.id} is due now." in notice
    assert "the gates allow it now" in notice
    # A second press before the dispatcher ran changes nothing that matters: still one row.
    ops.post(f"/admin/leads/{lead_id}/messages/{follow_up.id}/send-now", csrf=token)

    mails_before = len(outbox_files.emails(services.settings.resolved_outbox_dir))
    claimed = claim_and_send_all(services)
    assert [row.id for row in claimed] == [follow_up.id]
    assert claim_and_send_all(services) == []
    assert step(services, lead_id, "follow-up").status is MessageStatus.SENT
    mails = outbox_files.emails(services.settings.resolved_outbox_dir)
    assert len(mails) == mails_before + 1
    assert [e.action for e in audit_of(services, follow_up.id)].count("message.send_now") == 2


def test_send_now_on_a_queued_message_does_not_hand_it_over_twice(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    with services.sessions() as session:
        dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    text = step(services, lead_id, "optin-confirmation")
    assert text.status is MessageStatus.QUEUED
    token = ops.csrf(f"/admin/leads/{lead_id}")
    done = ops.post(f"/admin/leads/{lead_id}/messages/{text.id}/send-now", csrf=token)
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=already-queued#messages"
    after = step(services, lead_id, "optin-confirmation")
    assert (after.status, after.status_at) == (MessageStatus.QUEUED, text.status_at)
    with services.sessions() as session:
        # Nothing new for the dispatcher to claim: the row is not scheduled again.
        assert dispatch.claim_due(session, now=clock.utcnow(), limit=10) == []
    assert "message.send_now" not in {e.action for e in audit_of(services, text.id)}


# (ZIP code, its zone, the frozen instant, when 08:00 comes there, in UTC). Sunday 8 March 2026
# is the day clocks go forward (02:00) everywhere in the US but Arizona: 08:00 is in daylight
# time that morning, one hour earlier in UTC than the day before.
QUIET = [
    ("10001", "America/New_York", "2026-03-08 11:30:00", datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    ("60601", "America/Chicago", "2026-03-08 12:30:00", datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
    ("80202", "America/Denver", "2026-03-08 13:30:00", datetime(2026, 3, 8, 14, 0, tzinfo=UTC)),
    ("85004", "America/Phoenix", "2026-03-08 14:30:00", datetime(2026, 3, 8, 15, 0, tzinfo=UTC)),
    (
        "90012",
        "America/Los_Angeles",
        "2026-03-08 14:30:00",
        datetime(2026, 3, 8, 15, 0, tzinfo=UTC),
    ),
    ("96813", "Pacific/Honolulu", "2026-03-04 17:30:00", datetime(2026, 3, 4, 18, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("postal_code", "zone", "frozen_at", "eight_am"), QUIET)
def test_send_now_in_quiet_hours_stays_held_until_8_in_the_leads_zone(
    app: FastAPI,
    services: Services,
    postal_code: str,
    zone: str,
    frozen_at: str,
    eight_am: datetime,
) -> None:
    with freeze_time(frozen_at, tick=True) as frozen:
        ops = sign_in(app, services, "ops")
        lead_id = sign_up(
            services,
            email="quiet@example.com",
            phone="+12085550188",
            postal_code=postal_code,
            timezone=None,
        )
        claim_and_send_all(services)  # 07:30 there: the dispatcher holds the text back
        text = step(services, lead_id, "optin-confirmation")
        assert text.purpose is Purpose.OPTIN and text.channel is Channel.SMS
        assert text.status is MessageStatus.SCHEDULED and text.due_at == eight_am

        token = ops.csrf(f"/admin/leads/{lead_id}")
        done = ops.post(f"/admin/leads/{lead_id}/messages/{text.id}/send-now", csrf=token)
        assert done.status_code == 303
        notice = text_of(ops.get(done.headers["location"]))
        assert "held by the rules: outside the allowed hours" in notice
        assert "8:00 AM" in notice and f"(the lead's time zone: {zone})" in notice

        claimed = claim_and_send_all(services)  # the real dispatch: claimed, and held again
        assert [row.id for row in claimed] == [text.id]
        held = step(services, lead_id, "optin-confirmation")
        assert held.status is MessageStatus.SCHEDULED and held.due_at == eight_am
        assert outbox_files.texts(services.settings.resolved_outbox_dir) == []

        frozen.move_to(eight_am + timedelta(seconds=1))
        claim_and_send_all(services)
        claim_and_send_all(services)
    assert step(services, lead_id, "optin-confirmation").status is MessageStatus.SENT
    assert len(outbox_files.texts(services.settings.resolved_outbox_dir)) == 1
