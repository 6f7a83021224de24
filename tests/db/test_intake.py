"""Sign-up intake: normalisation, de-duplication, consent evidence, enrolment, atomicity."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from nurture import consent
from nurture.consent import disclosures
from nurture.db.models import (
    Channel,
    ConsentEvent,
    Enrollment,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.leads.intake import InvalidSignupError, parse_signup, submit_signup
from nurture.runtime import Services
from tests.support.factories import EVIDENCE, messages_of, sign_up, signup_data


def test_signup_stores_a_normalised_lead_and_plans_the_sequence(services: Services) -> None:
    lead_id = sign_up(services, email="Ana.Rivera@Example.COM", phone="(208) 555-0123")
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert lead.email == "ana.rivera@example.com"
        assert lead.phone == "+12085550123"
        assert lead.stage.value == "signed_up"
        rows = messages_of(session, lead_id)
        assert [(m.step_key, m.channel, m.status) for m in rows] == [
            ("optin-confirmation", Channel.SMS, MessageStatus.SCHEDULED),
            ("welcome", Channel.EMAIL, MessageStatus.SCHEDULED),
            ("follow-up", Channel.EMAIL, MessageStatus.SCHEDULED),
        ]
        assert (rows[2].due_at - rows[1].due_at).days == 2
        assert all(row.due_at.tzinfo is not None for row in rows)


def test_rule_1_consent_is_recorded_with_its_evidence(services: Services) -> None:
    shown = disclosures.Shown(
        wording=services.disclosures, seller=services.clinic.name, boxes_started_unticked=True
    )
    lead_id = submit_signup(
        services.sessions,
        parse_signup(
            signup_data(
                consent={"sms_marketing": True}, consent_version=services.disclosures.version
            )
        ),
        EVIDENCE,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
        shown=shown,
    ).lead_id
    with services.sessions() as session:
        state = consent.current(session, lead_id)
        assert state.as_dict() == {
            "email": {"care": True, "marketing": False},
            "sms": {"care": False, "marketing": True},
        }
        event = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.lead_id == lead_id, ConsentEvent.purpose == Purpose.MARKETING
            )
        ).one()
    assert event.evidence["disclosure_text"] == services.disclosures.sms_marketing
    assert event.evidence["disclosure_version"] == services.disclosures.version
    # What the caller said it showed is kept, as its claim only.
    assert event.evidence["caller_claim"] == "I agree to texts and e-mail from the clinic."
    assert event.evidence["ip"] == "203.0.113.7"
    assert event.evidence["user_agent"] == "pytest"
    assert event.evidence["page_url"] == "https://clinic.example/consult"
    assert event.evidence["checkbox"] == "sms_marketing"
    assert event.evidence["box_started_unticked"] is True
    assert event.evidence["seller"] == "Ketamine Infusions of Idaho"
    assert event.evidence["phone"] == event.evidence["contact"] == "+12085550123"
    assert event.evidence["name"] == "Ana Rivera"
    assert event.occurred_at.utcoffset() is not None


def test_rule_1_without_the_servers_wording_no_wording_is_on_record(services: Services) -> None:
    """A caller that resolves no disclosure version leaves the wording empty: its own text is
    never recorded as what the person was shown."""
    lead_id = sign_up(services, consent={"sms_care": True})
    with services.sessions() as session:
        event = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.lead_id == lead_id, ConsentEvent.channel == Channel.SMS
            )
        ).one()
    assert event.evidence["disclosure_text"] is None
    assert event.evidence["caller_claim"] == "I agree to texts and e-mail from the clinic."
    assert "unencrypted_ack" not in event.evidence


def test_the_same_person_twice_is_one_lead_one_enrolment_more_consent(services: Services) -> None:
    first = sign_up(services, consent={"sms_care": True})
    second = sign_up(services, email="ANA.RIVERA@example.com", consent={"email_marketing": True})
    assert first == second
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 1
        assert len(messages_of(session, first)) == 3
        state = consent.current(session, first)
        assert state.allows(Channel.SMS, Purpose.CARE)
        assert state.allows(Channel.EMAIL, Purpose.MARKETING)


def test_matching_by_phone_alone_finds_the_existing_lead(services: Services) -> None:
    first = sign_up(services, email=None, consent={"sms_care": True})
    second = sign_up(services, email="new@example.com", phone="208-555-0123", consent={})
    assert first == second
    with services.sessions() as session:
        assert session.get_one(Lead, first).email == "new@example.com"


def test_sms_consent_belongs_to_the_lead_who_owns_the_number(services: Services) -> None:
    by_email = sign_up(services, phone=None, consent={"email_marketing": True})
    by_phone = sign_up(services, email="other@example.com", phone="+12085550199", consent={})
    merged = sign_up(
        services,
        email="ana.rivera@example.com",
        phone="+12085550199",
        consent={"sms_marketing": True},
    )
    assert merged == by_email
    with services.sessions() as session:
        assert consent.current(session, by_phone).allows(Channel.SMS, Purpose.MARKETING)
        assert not consent.current(session, by_email).allows(Channel.SMS, Purpose.MARKETING)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"email": "not-an-address"}, "email", "not a valid e-mail"),
        ({"phone": "555"}, "phone", "not"),
        ({"phone": "+1 208 555 01"}, "phone", "not"),
        ({"first_name": ""}, "first_name", "please tell us your first name"),
        ({"first_name": "x" * 101}, "first_name", "too long: at most 100 characters"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"postal_code": "ABCDE"}, "postal_code", "ZIP"),
        ({"email": None, "phone": None, "consent": {}}, "email", "e-mail address or a phone"),
        ({"phone": None}, "phone", "needed to receive texts"),
        ({"consent_version": None}, "consent_version", "disclosure version"),
        ({"colour": "blue"}, "colour", "Extra inputs"),
        ({"consent": {"sms_marketing": "perhaps"}}, "consent.sms_marketing", "yes or no"),
    ],
)
def test_bad_input_names_the_field(overrides: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(InvalidSignupError) as caught:
        parse_signup(signup_data(**overrides))
    fields = {problem.field: problem.message for problem in caught.value.problems}
    assert field in fields, fields
    assert fragment in fields[field]


def test_a_failing_signup_writes_nothing(services: Services) -> None:
    """A failure after the lead row was flushed must roll everything back."""
    signup = parse_signup(signup_data())

    class BrokenPlanError(Exception):
        pass

    original = services.catalog.triggered_by

    def explode(event: object) -> list[object]:
        raise BrokenPlanError

    services.catalog.triggered_by = explode  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(BrokenPlanError):
            submit_signup(
                services.sessions,
                signup,
                EVIDENCE,
                catalog=services.catalog,
                clinic_zone=services.clinic.zone,
            )
    finally:
        services.catalog.triggered_by = original  # type: ignore[method-assign]
    with services.sessions() as session:
        for table in (Lead, ConsentEvent, Enrollment, Message):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_concurrent_duplicate_signups_end_as_one_lead_and_one_enrolment(services: Services) -> None:
    signup = parse_signup(signup_data())
    start = threading.Barrier(4)

    def submit() -> object:
        start.wait()
        return submit_signup(
            services.sessions,
            signup,
            EVIDENCE,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
        ).lead_id

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: submit(), range(4)))
    assert len(ids) == 1
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 1
        assert session.scalar(select(func.count()).select_from(Message)) == 3
