"""Booking tools' webhooks (issue 13 §1) over the real app: for each of Calendly, Cal.com,
Acuity and Square a good delivery, a forged and a missing signature, a replayed delivery, an
unknown lead, an out-of-order pair, a reschedule and an event type that is not the consult."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nurture.db.models import (
    BookingDelivery,
    Channel,
    ConsentEvent,
    Lead,
    LeadEvent,
    LeadStage,
    Message,
    Purpose,
)
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import REPO, SettingsFactory
from tests.support import booking_signing as bs
from tests.support.acuity_standin import BookingApiStandIn, square_customer
from tests.support.factories import sign_up

NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # tests/db/conftest.py freezes time here
CONSULT = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
MOVED = datetime(2026, 3, 12, 17, 0, tzinfo=UTC)
SQUARE_URL = "https://nurture.test/webhooks/square"  # the public URL, as subscribed


@pytest.fixture
def apis() -> Iterator[BookingApiStandIn]:
    with BookingApiStandIn() as standin:
        yield standin


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The clinic's program (its consult reminders), with a consult type listed per tool."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "integrations.yaml").write_text(
        "consult_event_types:\n"
        "  calendly: [Free consultation]\n"
        "  calcom: [42]\n"
        "  acuity: [1]\n"
        "  square: [CONSULTVAR]\n"
    )
    return config


@pytest.fixture
def services(
    make_settings: SettingsFactory, config_dir: Path, apis: BookingApiStandIn
) -> Iterator[Services]:
    built = build_services(
        make_settings(
            config_dir=config_dir,
            calendly_signing_key=bs.CALENDLY_KEY,
            calcom_secret=bs.CALCOM_SECRET,
            acuity_api_key=bs.ACUITY_API_KEY,
            acuity_user_id=bs.ACUITY_USER_ID,
            acuity_api_url=apis.acuity_url,
            square_signature_key=bs.SQUARE_KEY,
            square_access_token=bs.SQUARE_TOKEN,
            square_api_url=apis.url,
            booking_fetch_timeout=2,
            booking_fetch_attempts=2,
        )
    )
    yield built
    built.close()


def lead_by_email(services: Services, email: str) -> Lead | None:
    with services.sessions() as session:
        return session.scalars(select(Lead).where(Lead.email == email)).one_or_none()


def events_of(services: Services, lead_id: uuid.UUID) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(LeadEvent.type).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
            )
        )


def reminders_of(services: Services, lead_id: uuid.UUID) -> list[tuple[str, Channel, datetime]]:
    with services.sessions() as session:
        rows = session.scalars(
            select(Message)
            .where(Message.lead_id == lead_id, Message.sequence_key == "consult-reminders")
            .order_by(Message.id)
        )
        return [
            (m.step_key or "", m.channel, m.due_at) for m in rows if m.status.value == "scheduled"
        ]


def count(services: Services, model: type) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def consents_of(services: Services, lead_id: uuid.UUID) -> set[tuple[Channel, Purpose]]:
    with services.sessions() as session:
        return {
            (event.channel, event.purpose)
            for event in session.scalars(
                select(ConsentEvent).where(ConsentEvent.lead_id == lead_id)
            )
        }


# --- Calendly ---------------------------------------------------------------------------
INVITEE = "https://api.calendly.com/scheduled_events/AAAA/invitees/BBBB"
NEW_INVITEE = "https://api.calendly.com/scheduled_events/CCCC/invitees/DDDD"


def calendly(client: TestClient, body: bytes) -> dict[str, object]:
    response = client.post("/webhooks/calendly", content=body, headers=bs.calendly_headers(body))
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_calendly_booking_of_a_stranger_makes_a_lead_with_care_consent_and_plans_reminders(
    client: TestClient, services: Services
) -> None:
    body = bs.calendly_invitee(
        "invitee.created",
        invitee=INVITEE,
        created_at=NOW,
        start=CONSULT,
        text_reminder_number="+1 208 555 0142",
    )
    answer = calendly(client, body)
    assert answer["outcome"] == "applied" and answer["lead_created"] is True
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and lead.stage is LeadStage.BOOKED and lead.consult_at == CONSULT
    assert (lead.first_name, lead.last_name, lead.phone) == ("Jo", "Doe", "+12085550142")
    assert lead.browser_timezone == "America/Boise"  # only narrows the hours texts go in
    # Only what the booking carries: care e-mail, care texts (asked for text reminders).
    assert consents_of(services, lead.id) == {
        (Channel.EMAIL, Purpose.CARE),
        (Channel.SMS, Purpose.CARE),
    }
    planned = reminders_of(services, lead.id)
    assert ("reminder-email-24h", Channel.EMAIL, CONSULT - timedelta(hours=24)) in planned
    assert ("reminder-sms-2h", Channel.SMS, CONSULT - timedelta(hours=2)) in planned
    with services.sessions() as session:
        optin = session.scalars(
            select(Message).where(Message.lead_id == lead.id, Message.purpose == Purpose.OPTIN)
        ).all()
        evidence = session.scalars(
            select(ConsentEvent.evidence).where(
                ConsentEvent.lead_id == lead.id, ConsentEvent.channel == Channel.SMS
            )
        ).one()
    assert len(optin) == 1  # the first text the number receives is the opt-in confirmation
    assert evidence["booking"] == INVITEE and evidence["checkbox"] == "text_reminder_number"
    assert evidence["phone"] == "+12085550142"


def test_calendly_booking_without_a_reminder_number_gives_no_texts(
    client: TestClient, services: Services
) -> None:
    calendly(
        client,
        bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT),
    )
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and lead.phone is None
    assert consents_of(services, lead.id) == {(Channel.EMAIL, Purpose.CARE)}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Calendly-Webhook-Signature": "garbage"},
        "wrong key",
        "too old",
        "far future",
        {"Calendly-Webhook-Signature": "t=999999999999,v1=00"},
        {"Calendly-Webhook-Signature": "t=1772560800,v1=00,t=1772560800"},
    ],
)
def test_calendly_forged_missing_or_replayed_signature_is_403_and_records_nothing(
    client: TestClient, services: Services, headers: object
) -> None:
    body = bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT)
    if headers == "wrong key":
        headers = bs.calendly_headers(body, key="not-the-key")
    elif headers == "too old":
        headers = bs.calendly_headers(body, at=NOW.timestamp() - 600)
    elif headers == "far future":
        headers = bs.calendly_headers(body, at=NOW.timestamp() + 600)
    response = client.post("/webhooks/calendly", content=body, headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 403
    assert count(services, Lead) == 0 and count(services, BookingDelivery) == 0


def test_calendly_signature_must_cover_this_body(client: TestClient, services: Services) -> None:
    body = bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT)
    other = body.replace(b"jo@example.com", b"mallory@example.com")
    response = client.post("/webhooks/calendly", content=other, headers=bs.calendly_headers(body))
    assert response.status_code == 403 and count(services, Lead) == 0


def test_calendly_hostile_name_is_not_kept(client: TestClient, services: Services) -> None:
    body = bs.calendly_invitee(
        "invitee.created",
        invitee=INVITEE,
        created_at=NOW,
        start=CONSULT,
        name="<a href='https://evil.example'>Jo</a>",
    )
    assert calendly(client, body)["outcome"] == "applied"
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and (lead.first_name, lead.last_name) == ("", "")


def test_calendly_replayed_delivery_counts_once(client: TestClient, services: Services) -> None:
    body = bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT)
    assert calendly(client, body)["outcome"] == "applied"
    assert calendly(client, body)["outcome"] == "duplicate"  # re-signed, as a retry would be
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and events_of(services, lead.id) == ["consult_booked"]
    assert count(services, BookingDelivery) == 1


def test_calendly_cancel_for_someone_unknown_is_acknowledged_and_makes_no_lead(
    client: TestClient, services: Services
) -> None:
    body = bs.calendly_invitee("invitee.canceled", invitee=INVITEE, created_at=NOW, start=CONSULT)
    assert calendly(client, body)["outcome"] == "unknown_lead"
    assert count(services, Lead) == 0


def test_calendly_late_created_does_not_undo_a_cancel(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services, email="jo@example.com")
    created = bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT)
    canceled = bs.calendly_invitee(
        "invitee.canceled", invitee=INVITEE, created_at=NOW + timedelta(minutes=1), start=CONSULT
    )
    assert calendly(client, canceled)["outcome"] == "unchanged"  # nothing booked yet
    assert calendly(client, created)["outcome"] == "stale"
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert lead.stage is LeadStage.SIGNED_UP and lead.consult_at is None
    assert reminders_of(services, lead_id) == []


def test_calendly_booked_then_cancelled_ends_the_reminders(
    client: TestClient, services: Services
) -> None:
    calendly(
        client,
        bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT),
    )
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and reminders_of(services, lead.id)
    canceled = bs.calendly_invitee(
        "invitee.canceled", invitee=INVITEE, created_at=NOW + timedelta(minutes=1), start=CONSULT
    )
    assert calendly(client, canceled)["outcome"] == "applied"
    assert reminders_of(services, lead.id) == []
    assert events_of(services, lead.id) == ["consult_booked", "consult_cancelled"]


@pytest.mark.parametrize("cancel_first", [True, False])
def test_calendly_reschedule_is_one_reschedule_in_either_order(
    client: TestClient, services: Services, cancel_first: bool
) -> None:
    calendly(
        client,
        bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT),
    )
    later = NOW + timedelta(minutes=5)
    cancel = bs.calendly_invitee(
        "invitee.canceled",
        invitee=INVITEE,
        created_at=later,
        start=CONSULT,
        rescheduled=True,
        new_invitee=NEW_INVITEE,
    )
    create = bs.calendly_invitee(
        "invitee.created", invitee=NEW_INVITEE, created_at=later, start=MOVED, old_invitee=INVITEE
    )
    for body in (cancel, create) if cancel_first else (create, cancel):
        calendly(client, body)
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and lead.stage is LeadStage.BOOKED and lead.consult_at == MOVED
    assert events_of(services, lead.id) == ["consult_booked", "consult_rescheduled"]
    due = {step: at for step, _, at in reminders_of(services, lead.id)}
    assert due["reminder-email-24h"] == MOVED - timedelta(hours=24)
    # A late duplicate-free "created" of the old invitee cannot bring the old time back.
    stale = bs.calendly_invitee(
        "invitee.created", invitee=INVITEE, created_at=NOW + timedelta(seconds=1), start=CONSULT
    )
    assert calendly(client, stale)["outcome"] == "stale"


def test_calendly_no_show_names_only_the_invitee(client: TestClient, services: Services) -> None:
    calendly(
        client,
        bs.calendly_invitee("invitee.created", invitee=INVITEE, created_at=NOW, start=CONSULT),
    )
    answer = calendly(
        client, bs.calendly_no_show(invitee=INVITEE, created_at=NOW + timedelta(hours=1))
    )
    assert answer["outcome"] == "applied"
    lead = lead_by_email(services, "jo@example.com")
    assert lead is not None and events_of(services, lead.id)[-1] == "no_show"


def test_calendly_other_event_types_are_acknowledged_and_ignored(
    client: TestClient, services: Services
) -> None:
    body = bs.calendly_invitee(
        "invitee.created",
        invitee=INVITEE,
        created_at=NOW,
        start=CONSULT,
        event_type="https://api.calendly.com/event_types/OTHER",
        event_name="Infusion session",
    )
    assert calendly(client, body)["outcome"] == "not_consult"
    assert count(services, Lead) == 0
    body = (
        b'{"event":"routing_form_submission.created",'
        b'"created_at":"2026-03-03T18:00:00Z","payload":{}}'
    )
    assert calendly(client, body)["outcome"] == "ignored"


def test_unconfigured_booking_tools_answer_404(make_settings: SettingsFactory) -> None:
    services = build_services(make_settings())
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            for path in ("calendly", "calcom", "acuity", "square"):
                assert client.post(f"/webhooks/{path}", content=b"{}").status_code == 404
    finally:
        services.close()


def test_calendly_unreadable_body_is_422_not_500(client: TestClient, services: Services) -> None:
    for body in (b"not json", b'{"event":"invitee.created","created_at":"x","payload":{}}', b"[1]"):
        response = client.post(
            "/webhooks/calendly", content=body, headers=bs.calendly_headers(body)
        )
        assert response.status_code == 422, response.text
    assert count(services, BookingDelivery) == 0


# --- Cal.com ----------------------------------------------------------------------------
def calcom(client: TestClient, body: bytes, **signing: str) -> dict[str, object]:
    response = client.post(
        "/webhooks/calcom", content=body, headers=bs.calcom_headers(body, **signing)
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_calcom_booking_plans_reminders_and_replay_counts_once(
    client: TestClient, services: Services
) -> None:
    body = bs.calcom_booking(
        "BOOKING_CREATED",
        uid="uid-1",
        created_at=NOW,
        start=CONSULT,
        sms_reminder_number="+12085550143",
    )
    assert calcom(client, body)["outcome"] == "applied"
    assert calcom(client, body)["outcome"] == "duplicate"
    lead = lead_by_email(services, "cal@example.com")
    assert lead is not None and lead.consult_at == CONSULT and lead.phone == "+12085550143"
    assert consents_of(services, lead.id) == {
        (Channel.EMAIL, Purpose.CARE),
        (Channel.SMS, Purpose.CARE),
    }
    assert events_of(services, lead.id) == ["consult_booked"]
    assert reminders_of(services, lead.id)


@pytest.mark.parametrize("signature", [None, "no-secret-provided", "wrong"])
def test_calcom_forged_or_missing_signature_is_403(
    client: TestClient, services: Services, signature: str | None
) -> None:
    body = bs.calcom_booking("BOOKING_CREATED", uid="uid-1", created_at=NOW, start=CONSULT)
    headers = {"Content-Type": "application/json"}
    if signature == "wrong":
        headers = bs.calcom_headers(body, secret="not-the-secret")
    elif signature is not None:
        headers["X-Cal-Signature-256"] = signature
    assert client.post("/webhooks/calcom", content=body, headers=headers).status_code == 403
    assert count(services, Lead) == 0 and count(services, BookingDelivery) == 0


def test_calcom_reschedule_moves_the_consult_and_the_old_booking_stays_replaced(
    client: TestClient, services: Services
) -> None:
    created = bs.calcom_booking("BOOKING_CREATED", uid="uid-1", created_at=NOW, start=CONSULT)
    calcom(client, created)
    moved = bs.calcom_booking(
        "BOOKING_RESCHEDULED",
        uid="uid-2",
        created_at=NOW + timedelta(minutes=3),
        start=MOVED,
        reschedule_uid="uid-1",
    )
    assert calcom(client, moved)["outcome"] == "applied"
    lead = lead_by_email(services, "cal@example.com")
    assert lead is not None and lead.consult_at == MOVED
    assert events_of(services, lead.id) == ["consult_booked", "consult_rescheduled"]
    # The old booking's creation delivered again late (a new delivery of it): still replaced.
    late = bs.calcom_booking(
        "BOOKING_CREATED", uid="uid-1", created_at=NOW + timedelta(minutes=1), start=CONSULT
    )
    assert calcom(client, late)["outcome"] == "stale"
    no_show = bs.calcom_no_show(uid="uid-2", created_at=NOW + timedelta(days=9))
    assert calcom(client, no_show)["outcome"] == "applied"
    assert events_of(services, lead.id)[-1] == "no_show"


def test_calcom_meeting_ended_completes_the_consult(client: TestClient, services: Services) -> None:
    calcom(client, bs.calcom_booking("BOOKING_CREATED", uid="uid-1", created_at=NOW, start=CONSULT))
    ended = (
        b'{"triggerEvent":"MEETING_ENDED","uid":"uid-1","eventTypeId":42,'
        b'"startTime":"2026-03-10T16:00:00Z","endTime":"2026-03-10T16:45:00Z",'
        b'"attendees":[{"email":"cal@example.com","name":"Cal Person"}]}'
    )
    assert calcom(client, ended)["outcome"] == "applied"
    lead = lead_by_email(services, "cal@example.com")
    assert lead is not None and lead.stage is LeadStage.CONSULTED
    assert events_of(services, lead.id) == ["consult_booked", "consult_completed"]


def test_calcom_out_of_order_cancel_then_create_and_unknown_lead(
    client: TestClient, services: Services
) -> None:
    cancel = bs.calcom_booking(
        "BOOKING_CANCELLED", uid="uid-1", created_at=NOW + timedelta(minutes=2), start=CONSULT
    )
    create = bs.calcom_booking("BOOKING_CREATED", uid="uid-1", created_at=NOW, start=CONSULT)
    assert calcom(client, cancel)["outcome"] == "unknown_lead"
    assert calcom(client, create)["outcome"] == "stale"
    assert count(services, Lead) == 0


def test_calcom_other_event_type_is_ignored(client: TestClient, services: Services) -> None:
    body = bs.calcom_booking(
        "BOOKING_CREATED",
        uid="uid-1",
        created_at=NOW,
        start=CONSULT,
        event_type_id=7,
        slug="infusion",
    )
    assert calcom(client, body)["outcome"] == "not_consult"
    assert count(services, Lead) == 0


# --- Acuity -----------------------------------------------------------------------------
def acuity(client: TestClient, body: bytes, status: int = 200) -> dict[str, object]:
    response = client.post("/webhooks/acuity", content=body, headers=bs.acuity_headers(body))
    assert response.status_code == status, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_acuity_fetches_the_appointment_and_books_it(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.appointments["501"] = bs.acuity_appointment(501, start=CONSULT, sms_opt_in=True)
    assert acuity(client, bs.acuity_notice("scheduled", 501))["outcome"] == "applied"
    lead = lead_by_email(services, "acu@example.com")
    assert lead is not None and lead.consult_at == CONSULT and lead.phone == "+12085550177"
    assert consents_of(services, lead.id) == {
        (Channel.EMAIL, Purpose.CARE),
        (Channel.SMS, Purpose.CARE),
    }
    assert apis.requests == ["/api/v1/appointments/501"]
    # "changed" for the same appointment as it is: Acuity's documented duplicate.
    assert acuity(client, bs.acuity_notice("changed", 501))["outcome"] == "duplicate"
    assert events_of(services, lead.id) == ["consult_booked"]


def test_acuity_forged_or_missing_signature_is_403_and_fetches_nothing(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    body = bs.acuity_notice("scheduled", 501)
    for headers in ({}, bs.acuity_headers(body, api_key="not-the-key")):
        assert client.post("/webhooks/acuity", content=body, headers=headers).status_code == 403
    assert apis.requests == [] and count(services, BookingDelivery) == 0


def test_acuity_reschedule_and_a_late_scheduled_after_cancel(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.appointments["501"] = bs.acuity_appointment(501, start=CONSULT)
    acuity(client, bs.acuity_notice("scheduled", 501))
    apis.appointments["501"] = bs.acuity_appointment(501, start=MOVED)
    assert acuity(client, bs.acuity_notice("rescheduled", 501))["outcome"] == "applied"
    lead = lead_by_email(services, "acu@example.com")
    assert lead is not None and lead.consult_at == MOVED
    apis.appointments["501"] = bs.acuity_appointment(501, start=MOVED, canceled=True)
    assert acuity(client, bs.acuity_notice("canceled", 501))["outcome"] == "applied"
    # The "scheduled" webhook arriving last reads the appointment as it is now: cancelled.
    assert acuity(client, bs.acuity_notice("scheduled", 501))["outcome"] == "duplicate"
    assert events_of(services, lead.id) == [
        "consult_booked",
        "consult_rescheduled",
        "consult_cancelled",
    ]
    assert reminders_of(services, lead.id) == []


def test_acuity_retries_a_failing_api_and_answers_503_when_it_stays_down(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.appointments["501"] = bs.acuity_appointment(501, start=CONSULT)
    apis.fail_next = 1
    assert acuity(client, bs.acuity_notice("scheduled", 501))["outcome"] == "applied"
    apis.appointments["502"] = bs.acuity_appointment(502, start=CONSULT, email="other@example.com")
    apis.fail_next = 5
    response = client.post(
        "/webhooks/acuity",
        content=bs.acuity_notice("scheduled", 502),
        headers=bs.acuity_headers(bs.acuity_notice("scheduled", 502)),
    )
    assert response.status_code == 503  # Acuity retries; nothing recorded meanwhile
    assert lead_by_email(services, "other@example.com") is None


def test_acuity_unknown_lead_and_other_types(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.appointments["503"] = bs.acuity_appointment(503, start=CONSULT, canceled=True)
    assert acuity(client, bs.acuity_notice("canceled", 503))["outcome"] == "unknown_lead"
    apis.appointments["504"] = bs.acuity_appointment(504, start=CONSULT, type_id=9)
    assert acuity(client, bs.acuity_notice("scheduled", 504, type_id=9))["outcome"] == "not_consult"
    assert acuity(client, b"action=order.completed&id=77")["outcome"] == "ignored"
    assert count(services, Lead) == 0


# --- Square -----------------------------------------------------------------------------
def square(client: TestClient, body: bytes) -> dict[str, object]:
    response = client.post(
        "/webhooks/square", content=body, headers=bs.square_headers(body, SQUARE_URL)
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_square_booking_reads_the_customer_and_never_grants_texts(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.customers["CUST1"] = square_customer()
    body = bs.square_booking(
        "booking.created", event_id="ev-1", booking_id="bk-1", updated_at=NOW, start=CONSULT
    )
    assert square(client, body)["outcome"] == "applied"
    assert square(client, body)["outcome"] == "duplicate"
    lead = lead_by_email(services, "sq@example.com")
    assert lead is not None and lead.consult_at == CONSULT
    assert consents_of(services, lead.id) == {(Channel.EMAIL, Purpose.CARE)}
    assert events_of(services, lead.id) == ["consult_booked"]


def test_square_signature_covers_the_notification_url(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.customers["CUST1"] = square_customer()
    body = bs.square_booking(
        "booking.created", event_id="ev-1", booking_id="bk-1", updated_at=NOW, start=CONSULT
    )
    for headers in (
        {},
        bs.square_headers(body, "https://elsewhere.test/webhooks/square"),
        bs.square_headers(body, SQUARE_URL, key="not-the-key"),
    ):
        assert client.post("/webhooks/square", content=body, headers=headers).status_code == 403
    assert apis.requests == [] and count(services, Lead) == 0


def test_square_reschedule_cancel_out_of_order_and_other_services(
    client: TestClient, services: Services, apis: BookingApiStandIn
) -> None:
    apis.customers["CUST1"] = square_customer()
    created = bs.square_booking(
        "booking.created", event_id="ev-1", booking_id="bk-1", updated_at=NOW, start=CONSULT
    )
    moved = bs.square_booking(
        "booking.updated",
        event_id="ev-2",
        booking_id="bk-1",
        updated_at=NOW + timedelta(minutes=1),
        start=MOVED,
        version=1,
    )
    cancelled = bs.square_booking(
        "booking.updated",
        event_id="ev-3",
        booking_id="bk-1",
        updated_at=NOW + timedelta(minutes=2),
        start=MOVED,
        status="CANCELLED_BY_CUSTOMER",
        version=2,
    )
    assert square(client, created)["outcome"] == "applied"
    assert square(client, cancelled)["outcome"] == "applied"
    assert square(client, moved)["outcome"] == "stale"  # older than the cancel it lost to
    lead = lead_by_email(services, "sq@example.com")
    assert lead is not None and lead.consult_at is None
    assert events_of(services, lead.id) == ["consult_booked", "consult_cancelled"]
    other = bs.square_booking(
        "booking.created",
        event_id="ev-4",
        booking_id="bk-2",
        updated_at=NOW,
        start=CONSULT,
        service_variation_id="HAIRCUT",
    )
    assert square(client, other)["outcome"] == "not_consult"
    apis.customers["CUST9"] = square_customer("CUST9", email="nobody@example.com", phone="")
    gone = bs.square_booking(
        "booking.updated",
        event_id="ev-5",
        booking_id="bk-9",
        updated_at=NOW,
        start=CONSULT,
        status="CANCELLED_BY_SELLER",
        customer_id="CUST9",
    )
    assert square(client, gone)["outcome"] == "unknown_lead"
    moved_again = bs.square_booking(
        "booking.created",
        event_id="ev-6",
        booking_id="bk-3",
        updated_at=NOW + timedelta(minutes=5),
        start=CONSULT,
    )
    square(client, moved_again)
    later = bs.square_booking(
        "booking.updated",
        event_id="ev-7",
        booking_id="bk-3",
        updated_at=NOW + timedelta(minutes=6),
        start=MOVED,
        version=1,
    )
    assert square(client, later)["outcome"] == "applied"
    assert lead_by_email(services, "sq@example.com").consult_at == MOVED  # type: ignore[union-attr]
    assert events_of(services, lead.id)[-1] == "consult_rescheduled"
