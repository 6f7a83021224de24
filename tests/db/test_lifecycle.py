"""The sequence engine on the clinic's own program: lifecycle events, reminders that follow every
reschedule and never arrive after the consult, exits, conditions, re-entry, reply C."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select

from nurture import clock
from nurture.db.models import (
    Enrollment,
    EnrollmentStatus,
    Lead,
    LeadEvent,
    LeadStage,
    Message,
    MessageStatus,
)
from nurture.leads.lifecycle import EventError, apply_event
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up

API_KEY = {"Authorization": "Bearer test-api-key"}


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    """The clinic's own program (config/sequences), as shipped."""
    built = build_services(make_settings(config_dir=REPO / "config"))
    yield built
    built.close()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(
    services: Services, lead_id: uuid.UUID, kind: LifecycleEvent, consult_at: datetime | None = None
) -> bool:
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, lead_id)
        return apply_event(
            session,
            lead,
            kind,
            consult_at=consult_at,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        ).changed


def run_until(services: Services, frozen: Any, until: datetime) -> None:
    """Advance the virtual clock from one due instant to the next, sending as the worker would."""
    while True:
        with services.sessions() as session:
            next_due = session.scalar(
                select(func.min(Message.due_at)).where(Message.status == MessageStatus.SCHEDULED)
            )
        if next_due is None or next_due > until:
            frozen.move_to(until)
            claim_and_send_all(services)
            return
        frozen.move_to(max(next_due, clock.utcnow()))
        claim_and_send_all(services)


def sent(
    services: Services, lead_id: uuid.UUID, sequence: str
) -> list[tuple[str, datetime | None]]:
    with services.sessions() as session:
        return sorted(
            (
                (m.step_key, m.sent_at)
                for m in messages_of(session, lead_id)
                if m.sequence_key == sequence and m.status is MessageStatus.SENT
            ),
            key=lambda item: (item[1] or datetime.max.replace(tzinfo=UTC), item[0]),
        )


def test_booking_rescheduling_twice_cancelling_and_rebooking(services: Services) -> None:
    with freeze_time("2026-03-02 15:00:00") as frozen:  # Mon 08:00 MST
        lead_id = sign_up(services)
        run_until(services, frozen, at("2026-03-02 16:00:00"))
        assert event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-05 17:30:00"))
        run_until(services, frozen, at("2026-03-03 16:00:00"))
        assert event(
            services, lead_id, LifecycleEvent.CONSULT_RESCHEDULED, at("2026-03-06 21:00:00")
        )
        run_until(services, frozen, at("2026-03-05 20:00:00"))  # one hour before the 24 h reminders
        assert event(
            services, lead_id, LifecycleEvent.CONSULT_RESCHEDULED, at("2026-03-09 16:00:00")
        )
        run_until(services, frozen, at("2026-03-08 12:00:00"))
        assert event(services, lead_id, LifecycleEvent.CONSULT_CANCELLED)
        run_until(services, frozen, at("2026-03-08 13:00:00"))
        assert event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-10 17:00:00"))
        run_until(services, frozen, at("2026-03-12 00:00:00"))

    assert sent(services, lead_id, "consult-reminders") == [
        ("booking-confirmation", at("2026-03-02 16:00:00")),
        ("booking-confirmation", at("2026-03-08 13:00:00")),  # the new booking, after the cancel
        ("reminder-email-24h", at("2026-03-09 17:00:00")),
        ("reminder-sms-24h", at("2026-03-09 17:00:00")),
        ("reminder-sms-2h", at("2026-03-10 15:00:00")),  # 09:00 MDT: DST began on the 8th
    ]
    with services.sessions() as session:
        rows = [m for m in messages_of(session, lead_id) if m.sequence_key == "consult-reminders"]
        # Every reminder planned for an old time was cancelled, none skipped late or sent.
        old = [
            m
            for m in rows
            if m.step_key != "booking-confirmation" and m.due_at < at("2026-03-09 00:00:00")
        ]
        assert old and all(m.status is MessageStatus.CANCELLED for m in old)
        assert {m.last_error for m in old} <= {
            "the consult moved; re-planned",
            "exited: consult_cancelled",
        }
        # Nothing ever arrives after the consult it is about.
        for m in rows:
            if m.sent_at and m.not_after:
                assert m.sent_at < m.not_after
        # The nurture ended at the first booking: nothing of it went out after that.
        nurture_after = [
            m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-nurture"
            and m.sent_at
            and m.sent_at > at("2026-03-02 16:00:00")
        ]
        assert nurture_after == []
        lead = session.get_one(Lead, lead_id)
        assert lead.stage is LeadStage.BOOKED
        assert lead.consult_version == 5  # booked, moved twice, cancelled, booked again


def test_a_late_booking_skips_the_24h_reminders_and_sends_the_2h_one(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:  # Tue 11:00 MST, consult at 14:00 MST
        lead_id = sign_up(services)
        claim_and_send_all(services)
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-03 21:00:00"))
        run_until(services, frozen, at("2026-03-04 00:00:00"))
    with services.sessions() as session:
        rows = {
            m.step_key: m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-reminders"
        }
    assert rows["reminder-email-24h"].status is MessageStatus.SKIPPED
    assert rows["reminder-sms-24h"].last_error == "its time had passed when it was planned"
    assert rows["reminder-sms-2h"].status is MessageStatus.SENT
    assert rows["reminder-sms-2h"].sent_at == at("2026-03-03 19:00:00")


def test_a_2h_reminder_that_quiet_hours_would_push_to_the_consult_is_skipped(
    services: Services,
) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        claim_and_send_all(services)
        event(
            services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-05 15:00:00")
        )  # Thu 08:00 MST
        run_until(services, frozen, at("2026-03-06 00:00:00"))
    with services.sessions() as session:
        rows = {
            m.step_key: m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-reminders"
        }
    assert rows["reminder-sms-2h"].status is MessageStatus.SKIPPED
    assert "not before its not_after" in (rows["reminder-sms-2h"].last_error or "")


def test_booking_ends_the_nurture_and_cancels_what_is_left(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00"):
        lead_id = sign_up(services)
        claim_and_send_all(services)
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-06 18:00:00"))
    with services.sessions() as session:
        nurture = [m for m in messages_of(session, lead_id) if m.sequence_key == "consult-nurture"]
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.sequence_key == "consult-nurture")
        ).one()
    assert {m.status for m in nurture if m.step_key not in {"optin-confirmation", "welcome"}} == {
        MessageStatus.CANCELLED
    }
    assert enrollment.status is EnrollmentStatus.EXITED
    assert enrollment.exit_reason == "consult_booked"


def test_reply_c_confirms_and_skips_the_please_confirm_text(make_settings: SettingsFactory) -> None:
    from tests.support.signing import AUTH_TOKEN, signed_headers

    services = build_services(
        make_settings(config_dir=REPO / "config", twilio_auth_token=AUTH_TOKEN)
    )
    with freeze_time("2026-03-02 18:00:00") as frozen:
        lead_id = sign_up(services)
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-05 18:00:00"))
        with TestClient(create_app(services)) as client:
            params = {
                "MessageSid": "SMc",
                "From": "+12085550123",
                "To": "+12085550100",
                "Body": "C",
            }
            url = "https://nurture.test/webhooks/twilio/sms"
            response = client.post(
                "/webhooks/twilio/sms", data=params, headers=signed_headers(url, params)
            )
        assert "confirmed" in response.text
        run_until(services, frozen, at("2026-03-06 00:00:00"))
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        rows = {
            m.step_key: m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-reminders"
        }
    assert lead.consult_confirmed_at is not None
    assert rows["reminder-sms-24h"].status is MessageStatus.SKIPPED
    assert rows["reminder-sms-24h"].last_error == "the consult is already confirmed"
    assert rows["reminder-sms-2h"].status is MessageStatus.SENT
    assert lead.marketing_paused_at is None  # a confirmation is not a reply waiting for staff
    services.close()


def test_the_same_event_twice_changes_nothing_twice(services: Services) -> None:
    lead_id = sign_up(services)
    consult = clock.utcnow() + timedelta(days=3)
    assert event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, consult)
    assert not event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, consult)
    with services.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Enrollment)
                .where(Enrollment.sequence_key == "consult-reminders")
            )
            == 1
        )
        assert (
            len([m for m in messages_of(session, lead_id) if m.sequence_key == "consult-reminders"])
            == 4
        )
        assert session.scalar(select(func.count()).select_from(LeadEvent)) == 1
        assert session.get_one(Lead, lead_id).consult_version == 1


def test_a_no_show_starts_the_follow_up_and_a_completed_consult_the_thanks(
    services: Services,
) -> None:
    with freeze_time("2026-03-02 18:00:00") as frozen:
        lead_id = sign_up(services)
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-03 18:00:00"))
        frozen.move_to("2026-03-03 18:30:00")
        event(services, lead_id, LifecycleEvent.NO_SHOW)
        run_until(services, frozen, at("2026-03-04 00:00:00"))
        assert [k for k, _ in sent(services, lead_id, "no-show-followup")] == [
            "no-show-text",
            "no-show-email",
        ]
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-05 18:00:00"))
        frozen.move_to("2026-03-05 19:00:00")
        event(services, lead_id, LifecycleEvent.CONSULT_COMPLETED)
        run_until(services, frozen, at("2026-03-14 00:00:00"))
    assert [k for k, _ in sent(services, lead_id, "post-consult-followup")] == [
        "thanks",
        "check-in",
    ]
    with services.sessions() as session:
        assert session.get_one(Lead, lead_id).stage is LeadStage.CONSULTED
        rebook = next(m for m in messages_of(session, lead_id) if m.step_key == "rebook-nudge")
        assert rebook.status is MessageStatus.CANCELLED  # booking again ended the no-show follow-up


@pytest.mark.parametrize(
    ("kind", "consult_at", "field", "fragment"),
    [
        (LifecycleEvent.CONSULT_BOOKED, None, "consult_at", "needs consult_at"),
        (
            LifecycleEvent.CONSULT_RESCHEDULED,
            datetime(2020, 1, 1, tzinfo=UTC),
            "consult_at",
            "in the past",
        ),
        (LifecycleEvent.CONSULT_BOOKED, datetime(2030, 1, 1), "consult_at", "offset"),
    ],
)
def test_bad_events_name_the_problem(
    services: Services, kind: LifecycleEvent, consult_at: datetime | None, field: str, fragment: str
) -> None:
    lead_id = sign_up(services)
    with pytest.raises(EventError) as caught:
        event(services, lead_id, kind, consult_at)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_the_events_api(client: TestClient, services: Services) -> None:
    lead_id = sign_up(services)
    url = f"/api/v1/leads/{lead_id}/events"
    body = {"type": "consult_booked", "consult_at": "2026-03-06T10:30:00-07:00"}
    assert client.post(url, json=body).status_code == 401
    response = client.post(url, json=body, headers=API_KEY)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "lead_id": str(lead_id),
        "stage": "booked",
        "consult_at": "2026-03-06T17:30:00+00:00",
        "changed": True,
        "exited": ["consult-nurture"],
        "enrolled": ["consult-reminders"],
    }
    assert client.post(url, json=body, headers=API_KEY).json()["changed"] is False
    with_id = {
        "type": "consult_rescheduled",
        "consult_at": "2026-03-07T10:30:00-07:00",
        "event_id": "crm-42",
    }
    assert client.post(url, json=with_id, headers=API_KEY).json()["changed"] is True
    assert client.post(url, json=with_id, headers=API_KEY).json()["changed"] is False


@pytest.mark.parametrize(
    ("body", "status", "field", "fragment"),
    [
        ({"type": "consult_moved"}, 422, "type", "unknown event 'consult_moved'"),
        ({"type": "signed_up"}, 422, "type", "not sent to this endpoint"),
        ({"type": "consult_booked"}, 422, "consult_at", "needs consult_at"),
        (
            {"type": "consult_booked", "consult_at": "next tuesday"},
            422,
            "consult_at",
            "not ISO 8601",
        ),
        (
            {"type": "consult_booked", "consult_at": "2026-03-06T10:30:00"},
            422,
            "consult_at",
            "offset",
        ),
        (
            {"type": "consult_booked", "consult_at": "2020-03-06T10:30:00Z"},
            422,
            "consult_at",
            "in the past",
        ),
        ({"type": "no_show", "colour": "red"}, 422, "colour", "unknown field"),
        ([1], 422, "body", "JSON object"),
    ],
)
def test_the_events_api_names_bad_input(
    client: TestClient, services: Services, body: object, status: int, field: str, fragment: str
) -> None:
    lead_id = sign_up(services)
    response = client.post(f"/api/v1/leads/{lead_id}/events", json=body, headers=API_KEY)
    assert response.status_code == status
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert fragment in error["message"]
    with services.sessions() as session:
        assert session.get_one(Lead, lead_id).stage is LeadStage.SIGNED_UP


def test_an_unknown_lead_is_404(client: TestClient) -> None:
    response = client.post(
        f"/api/v1/leads/{uuid.uuid4()}/events", json={"type": "no_show"}, headers=API_KEY
    )
    assert response.status_code == 404


def test_signing_up_again_while_enrolled_or_after_does_not_enrol_twice(services: Services) -> None:
    lead_id = sign_up(services)
    sign_up(services)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 1
    event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, clock.utcnow() + timedelta(days=2))
    sign_up(services)  # the nurture ended at booking and does not allow re-entry
    with services.sessions() as session:
        keys = session.scalars(select(Enrollment.sequence_key).order_by(Enrollment.id)).all()
    assert keys == ["consult-nurture", "consult-reminders"]


def test_completed_enrolments_are_closed_and_reminders_stay_open(services: Services) -> None:
    from nurture.outbox import planner

    with freeze_time("2026-03-02 18:00:00") as frozen:
        lead_id = sign_up(services)
        event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, at("2026-03-04 18:00:00"))
        run_until(services, frozen, at("2026-03-05 00:00:00"))
        with services.sessions.begin() as session:
            planner.complete_finished(session, catalog=services.catalog, now=clock.utcnow())
        with services.sessions() as session:
            statuses = dict(
                session.execute(select(Enrollment.sequence_key, Enrollment.status)).all()
            )
    assert statuses == {
        "consult-nurture": EnrollmentStatus.EXITED,
        "consult-reminders": EnrollmentStatus.ACTIVE,
    }


def test_an_event_applies_to_the_lead_as_it_is_now_not_as_the_caller_loaded_it(
    services: Services,
) -> None:
    """Issue 11 §3: apply_event locks and re-reads the lead itself, so every caller (API, staff
    page, CLI, booking webhooks) gets the same rule. Here a caller loaded the lead, then a
    booking landed from elsewhere, then the caller's reschedule applies on top of it."""
    booked_at, moved_to = at("2026-03-12 17:30:00"), at("2026-03-13 17:30:00")
    lead_id = sign_up(services)
    with services.sessions() as slow_caller:
        stale = slow_caller.get_one(Lead, lead_id)
        slow_caller.commit()  # the caller keeps its copy (expire_on_commit=False)
        assert stale.stage is LeadStage.SIGNED_UP
        assert event(services, lead_id, LifecycleEvent.CONSULT_BOOKED, booked_at)
        result = apply_event(
            slow_caller,
            stale,
            LifecycleEvent.CONSULT_RESCHEDULED,
            consult_at=moved_to,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        )
        slow_caller.commit()
    assert result.changed and result.consult_at == moved_to
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert lead.stage is LeadStage.BOOKED
        assert lead.consult_version == 2  # booked, then moved: the booking was not lost
        pending = [
            m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-reminders" and m.status is MessageStatus.SCHEDULED
        ]
        assert pending and all(m.due_at < moved_to for m in pending)
        assert all(m.not_after in (None, moved_to) for m in pending)
