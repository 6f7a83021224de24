"""Windows, caps and holds applied at send time, on the outbox rows (compliance rules 2–6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import update

from nurture import clock
from nurture.db.models import Channel, Lead, Message, MessageStatus, PauseScope, Purpose
from nurture.outbox import pauses
from nurture.runtime import Services
from tests.support import outbox_files
from tests.support.factories import (
    claim_and_send_all,
    messages_of,
    plan_marketing_texts,
    sign_up,
)


def rows(services: Services, lead_id: uuid.UUID) -> dict[str, Message]:
    with services.sessions() as session:
        return {m.step_key: m for m in messages_of(session, lead_id)}


def test_rule_4_a_signup_at_2am_gets_its_text_at_8am_local(services: Services) -> None:
    with freeze_time("2026-03-04 09:00:00") as frozen:  # Wed 02:00 MST
        lead_id = sign_up(services)
        claim_and_send_all(services)
        sms = rows(services, lead_id)["optin-confirmation"]
        assert sms.status is MessageStatus.SCHEDULED
        assert sms.due_at == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 08:00 MST
        assert sms.last_error == "outside the allowed hours; moved to Wed, Mar 4 at 8:00 AM MST"
        assert (
            rows(services, lead_id)["welcome"].status is MessageStatus.SENT
        )  # care e-mail: any hour
        frozen.move_to("2026-03-04 14:59:00")
        assert claim_and_send_all(services) == []
        frozen.move_to("2026-03-04 15:00:00")
        claim_and_send_all(services)
    assert rows(services, lead_id)["optin-confirmation"].status is MessageStatus.SENT
    assert len(outbox_files.texts(services.settings.resolved_outbox_dir)) == 1


def test_rule_5_a_208_number_without_a_zone_waits_for_8am_pacific(services: Services) -> None:
    with freeze_time("2026-03-02 15:30:00"):  # Mon 08:30 MST = 07:30 PST
        lead_id = sign_up(services, timezone=None, postal_code=None)
        claim_and_send_all(services)
        assert rows(services, lead_id)["optin-confirmation"].due_at == datetime(
            2026, 3, 2, 16, 0, tzinfo=UTC
        )


def test_the_reason_is_visible_in_the_api(services: Services) -> None:
    from fastapi.testclient import TestClient

    from nurture.web import create_app

    with freeze_time("2026-03-04 09:00:00"):
        lead_id = sign_up(services)
        claim_and_send_all(services)
    with TestClient(create_app(services)) as client:
        body = client.get(
            f"/api/v1/leads/{lead_id}", headers={"Authorization": "Bearer test-api-key"}
        ).json()
    [sms] = [m for m in body["messages"] if m["channel"] == "sms"]
    assert sms["status"] == "scheduled"
    assert "moved to Wed, Mar 4 at 8:00 AM MST" in sms["reason"]


def test_past_not_after_is_skipped_with_the_reason(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.lead_id == lead_id, Message.step_key == "welcome")
            .values(not_after=clock.utcnow() - timedelta(minutes=1))
        )
    claim_and_send_all(services)
    assert rows(services, lead_id)["welcome"].status is MessageStatus.SKIPPED
    assert rows(services, lead_id)["welcome"].last_error == "past its not_after time"


def test_a_deferral_that_would_land_after_not_after_is_skipped(services: Services) -> None:
    with freeze_time("2026-03-04 09:00:00"):  # 02:00 MST
        lead_id = sign_up(services)
        with services.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.lead_id == lead_id, Message.channel == Channel.SMS)
                .values(not_after=datetime(2026, 3, 4, 13, 0, tzinfo=UTC))
            )
        claim_and_send_all(services)
    sms = rows(services, lead_id)["optin-confirmation"]
    assert sms.status is MessageStatus.SKIPPED
    assert "not before its not_after time" in (sms.last_error or "")


def test_rule_6_at_most_three_marketing_texts_per_24_hours(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:  # Tue 11:00 MST
        lead_id = sign_up(services)
        claim_and_send_all(services)
        plan_marketing_texts(services, lead_id, 4)
        claim_and_send_all(services)
        statuses = [rows(services, lead_id)[f"nudge-{n}"].status for n in range(4)]
        assert statuses.count(MessageStatus.SENT) == 3
        held = next(
            rows(services, lead_id)[f"nudge-{n}"]
            for n in range(4)
            if statuses[n] is MessageStatus.SCHEDULED
        )
        assert "at most 3 per 24 hours" in (held.last_error or "")
        assert held.due_at == datetime(2026, 3, 4, 18, 0, tzinfo=UTC)
        frozen.move_to("2026-03-04 18:00:00")
        claim_and_send_all(services)
    assert rows(services, lead_id)[held.step_key].status is MessageStatus.SENT


def test_the_optin_confirmation_goes_once_per_24_hours_however_often_they_sign_up(
    services: Services,
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    with services.sessions.begin() as session:  # the enrolment ended; a new sign-up re-enrols
        session.execute(
            update(Message).where(Message.lead_id == lead_id).values(status=MessageStatus.SENT)
        )
        from nurture.db.models import Enrollment, EnrollmentStatus

        session.execute(update(Enrollment).values(status=EnrollmentStatus.COMPLETED))
    sign_up(services)
    claim_and_send_all(services)
    with services.sessions() as session:
        optins = [m for m in messages_of(session, lead_id) if m.purpose is Purpose.OPTIN]
    assert [m.status for m in optins] == [MessageStatus.SENT, MessageStatus.SKIPPED]
    assert "already sent" in (optins[1].last_error or "")


def test_a_lead_with_paused_marketing_gets_care_but_not_marketing(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        with services.sessions.begin() as session:
            lead = session.get_one(Lead, lead_id)
            pauses.pause_lead_marketing(
                session, lead, reason="crisis words in a text", actor="test", now=clock.utcnow()
            )
        claim_and_send_all(services)
        frozen.tick(timedelta(days=2))
        claim_and_send_all(services)
    statuses = {k: (m.status, m.last_error) for k, m in rows(services, lead_id).items()}
    assert statuses["welcome"][0] is MessageStatus.SENT
    assert statuses["optin-confirmation"][0] is MessageStatus.SENT
    assert statuses["follow-up"] == (
        MessageStatus.SKIPPED,
        "marketing is paused for this lead: crisis words in a text",
    )


def test_a_channel_pause_holds_rows_without_losing_them(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        with services.sessions.begin() as session:
            pause = pauses.pause(
                session, PauseScope.CHANNEL, "email", reason="ops", actor="test", now=clock.utcnow()
            )
        claim_and_send_all(services)
        assert rows(services, lead_id)["welcome"].status is MessageStatus.SCHEDULED
        assert rows(services, lead_id)["welcome"].attempts == 0  # held back, never claimed
        assert rows(services, lead_id)["optin-confirmation"].status is MessageStatus.SENT
        with services.sessions.begin() as session:
            session.get_one(type(pause), pause.id).ended_at = clock.utcnow()
        frozen.tick(timedelta(minutes=5))
        claim_and_send_all(services)
    assert rows(services, lead_id)["welcome"].status is MessageStatus.SENT


def test_texts_only_go_to_allowed_countries(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        session.get_one(
            Lead, lead_id
        ).phone = "+447700900123"  # a UK number (changed by staff, say)
    claim_and_send_all(services)
    sms = rows(services, lead_id)["optin-confirmation"]
    assert sms.status is MessageStatus.SKIPPED
    assert sms.last_error == "texts go only to numbers in US, CA"


def test_rule_3_the_optin_confirmation_is_the_first_text(services: Services) -> None:
    with freeze_time("2026-03-04 09:00:00") as frozen:  # 02:00 MST: the opt-in waits for 08:00
        lead_id = sign_up(services)
        now = clock.utcnow()
        with services.sessions.begin() as session:  # a care text due right now (a reminder, say)
            session.add(
                Message(
                    lead_id=lead_id,
                    step_key="reminder",
                    channel=Channel.SMS,
                    purpose=Purpose.CARE,
                    template_key="help-reply",
                    due_at=now,
                    status=MessageStatus.SCHEDULED,
                    status_at=now,
                    idempotency_key=f"test:{lead_id}:reminder",
                    created_at=now,
                )
            )
        claim_and_send_all(services)
        reminder = rows(services, lead_id)["reminder"]
        assert reminder.status is MessageStatus.SCHEDULED
        assert reminder.last_error == "waiting for the opt-in confirmation to go first"
        frozen.move_to("2026-03-04 15:00:00")
        claim_and_send_all(services)
        frozen.move_to("2026-03-04 15:01:00")
        claim_and_send_all(services)
    texts = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert [t.body.split(":")[0] for t in texts] == ["KI Idaho", "KI Idaho"]
    assert "signed up for recurring texts" in texts[0].body
    assert "Help:" in texts[1].body
