"""What a sign-up writes, row for row; that it costs one statement per table; and that a
sign-up failing late writes nothing.

A sign-up writes its consent events, planned rows and audit entries in one statement per table.
The rows expected below are what the row-by-row path wrote (the ORM, one object at a time, up
to commit cd820d4): the same columns, values and order. The file passed on that commit too,
until rule 1 changed what a consent's evidence holds (its expected evidence followed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture.db.models import AuditEvent, ConsentEvent, Enrollment, Lead, Message
from nurture.leads.intake import parse_signup, submit_signup
from nurture.runtime import Services
from tests.support.factories import EVIDENCE, sign_up, signup_data

SEQUENCE = "basic-nurture"  # tests/fixtures/sequences


def written(session: Session, names: dict[uuid.UUID, str]) -> dict[str, list[Any]]:
    """Every consent event, audit entry and planned row in id order; leads by ``names``,
    instants relative to the enrolment (the sign-up's own clock reading)."""
    enrollments = {e.id: e for e in session.scalars(select(Enrollment))}
    consent = [
        (names[e.lead_id], e.channel, e.purpose, e.action, e.source, e.evidence)
        for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))
    ]
    entries = [
        (e.actor, e.action, names[e.lead_id] if e.lead_id else None, e.message_id, e.details)
        for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]
    rows = []
    for message in session.scalars(select(Message).order_by(Message.id)):
        enrollment = enrollments[message.enrollment_id or 0]
        row = {column.name: getattr(message, column.key) for column in Message.__table__.columns}
        del row["id"]
        row["lead_id"] = names[message.lead_id]
        row["enrollment_id"] = enrollment.sequence_key
        row["idempotency_key"] = message.idempotency_key.replace(f"{enrollment.id}:", "<e>:", 1)
        for name in ("due_at", "not_after", "status_at", "created_at", "sent_at"):
            if row[name] is not None:
                row[name] = row[name] - enrollment.enrolled_at
        rows.append(row)
    return {"consent": consent, "audit": entries, "messages": rows}


def evidence(contact: str, checkbox: str | None) -> dict[str, Any]:
    # Since rule 1's per-box evidence, a caller's consent_text is only its claim, and with no
    # server-side wording shown (factories.sign_up passes none) no wording is recorded.
    return {
        "box_started_unticked": None,
        "caller_claim": "I agree to texts and e-mail from the clinic.",
        "checkbox": checkbox,
        "contact": contact,
        "disclosure_text": None,
        "disclosure_version": "test-1",
        "ip": "203.0.113.7",
        "name": "Ana Rivera",
        "page_url": "https://clinic.example/consult",
        "seller": None,
        "user_agent": "pytest",
        # A text grant names the number it covers (rule 1).
        **({"phone": contact} if contact.startswith("+") else {}),
    }


def granted(lead: str, channel: str, purpose: str) -> tuple[Any, ...]:
    details = {"channel": channel, "purpose": purpose, "source": "api"}
    return ("lead", "consent.granted", lead, None, details)


SIGNED_UP = {"page_url": "https://clinic.example/consult", "source": {}}


def planned(lead: str, step: str, channel: str, purpose: str, *, days: int = 0) -> dict[str, Any]:
    return {
        "enrollment_id": SEQUENCE,
        "lead_id": lead,
        "sequence_key": SEQUENCE,
        "step_key": step,
        "channel": channel,
        "purpose": purpose,
        "template_key": step,
        "recipient": None,
        "context": {},
        "anchor": "enrolled_at",
        "anchor_version": 0,
        "due_at": timedelta(days=days),
        "not_after": None,
        "status": "scheduled",
        "status_at": timedelta(0),
        "attempts": 0,
        "last_error": None,
        "error_code": None,
        "provider_id": None,
        "template_version": None,
        "variant": None,  # basic-nurture has no A/B test (issue 15 §3)
        "subject": None,
        "body": None,
        "sent_at": None,
        "idempotency_key": f"<e>:{step}:0",
        "created_at": timedelta(0),
    }


def test_signups_write_what_the_row_by_row_path_wrote(services: Services) -> None:
    first = sign_up(services)
    second = sign_up(services, email="other@example.com", phone="+12085550199")
    # Ana again, with the other lead's number: an identity conflict, no second enrolment.
    again = sign_up(services, phone="+12085550199", consent={"sms_marketing": True})
    assert again == first
    with services.sessions() as session:
        got = written(session, {first: "first", second: "second"})
    ana, other = "ana.rivera@example.com", "other@example.com"
    assert got["consent"] == [
        ("first", "email", "care", "granted", "api", evidence(ana, None)),
        ("first", "email", "marketing", "granted", "api", evidence(ana, "email_marketing")),
        ("first", "sms", "care", "granted", "api", evidence("+12085550123", "sms_care")),
        ("first", "sms", "marketing", "granted", "api", evidence("+12085550123", "sms_marketing")),
        ("second", "email", "care", "granted", "api", evidence(other, None)),
        ("second", "email", "marketing", "granted", "api", evidence(other, "email_marketing")),
        ("second", "sms", "care", "granted", "api", evidence("+12085550199", "sms_care")),
        ("second", "sms", "marketing", "granted", "api", evidence("+12085550199", "sms_marketing")),
        ("first", "email", "care", "granted", "api", evidence(ana, None)),
        ("second", "sms", "marketing", "granted", "api", evidence("+12085550199", "sms_marketing")),
    ]
    started = ("lead", "enrollment.started")
    assert got["audit"] == [
        granted("first", "email", "care"),
        granted("first", "email", "marketing"),
        granted("first", "sms", "care"),
        granted("first", "sms", "marketing"),
        ("lead", "lead.signed_up", "first", None, SIGNED_UP),
        (*started, "first", None, {"sequence": SEQUENCE, "version": 1}),
        granted("second", "email", "care"),
        granted("second", "email", "marketing"),
        granted("second", "sms", "care"),
        granted("second", "sms", "marketing"),
        ("lead", "lead.signed_up", "second", None, SIGNED_UP),
        (*started, "second", None, {"sequence": SEQUENCE, "version": 1}),
        granted("first", "email", "care"),
        granted("second", "sms", "marketing"),
        ("lead", "lead.identity_conflict", "first", None, {"phone_lead_id": str(second)}),
        ("lead", "lead.signed_up_again", "first", None, SIGNED_UP),
    ]
    assert got["messages"] == [
        planned(lead, step, channel, purpose, days=days)
        for lead in ("first", "second")
        for step, channel, purpose, days in (
            ("optin-confirmation", "sms", "optin", 0),
            ("welcome", "email", "care", 0),
            ("follow-up", "email", "marketing", 2),
        )
    ]


def test_audit_entries_are_in_the_order_they_happened(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        instants = list(session.scalars(select(AuditEvent.occurred_at).order_by(AuditEvent.id)))
    assert instants == sorted(instants)
    assert instants[0] >= lead.created_at


@pytest.fixture
def statements(services: Services) -> Iterator[list[str]]:
    """The SQL statements the database sees (not transaction control: BEGIN, COMMIT, SET
    TRANSACTION, or SQLite's pragmas)."""
    seen: list[str] = []
    engine = services.engine

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(("BEGIN", "PRAGMA", "COMMIT", "SET TRANSACTION")):
            seen.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_a_new_person_costs_one_statement_per_table(
    services: Services, statements: list[str]
) -> None:
    # The catalog as published is read once and trusted for a moment (sequence_store), so a
    # sign-up reads nothing before it writes.
    assert services.catalog
    statements.clear()
    sign_up(services)
    assert statements == [
        "INSERT INTO leads",  # ON CONFLICT DO NOTHING: no look-up first
        "INSERT INTO consent_events",  # all four grants
        "INSERT INTO enrollments",
        "INSERT INTO messages",  # every planned row
        "INSERT INTO audit_events",  # every entry: consent, sign-up, enrolment
    ]


def _after_the_consent_rows(monkeypatch: pytest.MonkeyPatch) -> type[Exception]:
    from nurture.consent import ledger

    real = ledger.record_all

    def record_all(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("the sign-up failed after its lead and consent rows")

    monkeypatch.setattr(ledger, "record_all", record_all)
    return RuntimeError


def _a_planned_row_the_table_refuses(monkeypatch: pytest.MonkeyPatch) -> type[Exception]:
    from nurture.outbox import planner

    real = planner.step_values

    def step_values(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        values = real(*args, **kwargs)
        if values is not None and values["step_key"] == "follow-up":  # the last row
            values["template_key"] = None  # NOT NULL
        return values

    monkeypatch.setattr(planner, "step_values", step_values)
    return IntegrityError


def _an_audit_entry_the_table_refuses(monkeypatch: pytest.MonkeyPatch) -> type[Exception]:
    from nurture.db import audit

    real = audit.Trail.write

    def write(self: audit.Trail, session: Session) -> None:
        self.add(actor=None, action="lead.signed_up")  # type: ignore[arg-type]  # NOT NULL
        real(self, session)

    monkeypatch.setattr(audit.Trail, "write", write)
    return IntegrityError


@pytest.mark.parametrize(
    "failure",
    [_after_the_consent_rows, _a_planned_row_the_table_refuses, _an_audit_entry_the_table_refuses],
)
def test_a_signup_failing_late_leaves_nothing_behind(
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[pytest.MonkeyPatch], type[Exception]],
) -> None:
    """Lead, consent events, enrolment, planned rows and audit entries land together or not
    at all, however late the sign-up fails: the audit entries are its last statement."""
    expected = failure(monkeypatch)
    with pytest.raises(expected):
        submit_signup(
            services.sessions,
            parse_signup(signup_data()),
            EVIDENCE,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
        )
    with services.sessions() as session:
        for table in (Lead, ConsentEvent, Enrollment, Message, AuditEvent):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
