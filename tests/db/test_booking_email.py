"""Compliance rule 17 in e-mail: the booking confirmation carries an add-to-calendar file and the
clinic's postal address, and no marketing e-mail reaches anyone while that address is a
placeholder.

Real parts: the e-mail leaves over SMTP to a local aiosmtpd server and is read back with the
standard library's parser; the gate runs in the worker's own send path (claim, `send_batch`).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import update

from nurture import clock
from nurture.db.models import Lead, MessageStatus
from nurture.leads.lifecycle import apply_event
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.smtp_server import Received, SmtpServer

CONSULT_AT = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)  # Fri 10:30 in Boise
# Lead text that got past intake some other way: a header, an encoded-word that decodes to
# one, and an iCalendar property of its own.
HOSTILE = "Ann\r\nBcc: evil@example.org\r\nBEGIN:VALARM =?utf-8?q?x=0D=0ABcc:_y@example.org?="


def with_placeholder_address(source: Path, target: Path) -> Path:
    """A copy of the tests' config directory (a clinic with a real address, see
    tests/conftest.py) whose clinic.yaml marks the address a placeholder again, as shipped."""
    shutil.copytree(source, target)
    clinic = target / "clinic.yaml"
    text = clinic.read_text()
    assert "placeholders: []" in text
    clinic.write_text(text.replace("placeholders: []", "placeholders: [address, on_call_phone]"))
    return target


@pytest.fixture
def program(make_settings: SettingsFactory, smtp_server: SmtpServer) -> Iterator[Services]:
    """The clinic's own program as shipped, with real e-mail."""
    built = build_services(
        make_settings(config_dir=REPO / "config", email_backend="smtp", smtp_url=smtp_server.url)
    )
    yield built
    built.close()


def book(services: Services, lead_id: uuid.UUID) -> None:
    with services.sessions.begin() as session:
        apply_event(
            session,
            session.get_one(Lead, lead_id),
            LifecycleEvent.CONSULT_BOOKED,
            consult_at=CONSULT_AT,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        )


def booking_confirmation(arrived: list[Received]) -> Received:
    [found] = [r for r in arrived if r.message["Subject"] == "Your consultation is booked"]
    return found


def unfolded(ics: str) -> list[str]:
    return ics.replace("\r\n ", "").split("\r\n")


def test_rule_17_the_booking_confirmation_carries_a_calendar_file_and_the_address(
    program: Services, smtp_server: SmtpServer
) -> None:
    lead_id = sign_up(program, phone=None, consent={"email_marketing": True})
    with program.sessions.begin() as session:  # as lead text from elsewhere would arrive
        session.execute(update(Lead).where(Lead.id == lead_id).values(first_name=HOSTILE))
    book(program, lead_id)
    claim_and_send_all(program)
    received = booking_confirmation(smtp_server.wait_for(1))

    # No lead text became a header, in the raw bytes or once parsed.
    head = received.raw.split(b"\r\n\r\n", 1)[0]
    assert b"Bcc" not in head and b"evil@" not in head
    message = received.message
    assert message["Bcc"] is None
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "consultation.ics"

    text_part = alternative.get_body(preferencelist=("plain",))
    assert text_part is not None
    assert program.clinic.address in text_part.get_content()  # the address, in the body too

    raw_ics = attachment.get_payload(decode=True)
    assert isinstance(raw_ics, bytes)
    assert raw_ics.endswith(b"\r\n") and b"\n" not in raw_ics.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw_ics.split(b"\r\n"))  # folded (RFC 5545 3.1)
    lines = unfolded(raw_ics.decode())
    assert lines[:1] == ["BEGIN:VCALENDAR"] and lines[-2:] == ["END:VCALENDAR", ""]
    assert [line for line in lines if line.startswith("BEGIN:")] == [
        "BEGIN:VCALENDAR",
        "BEGIN:VEVENT",
    ]
    properties = dict(line.split(":", 1) for line in lines if line and ":" in line)
    assert properties["METHOD"] == "PUBLISH"
    assert properties["UID"] == f"consult-{lead_id}@kiidaho.example"
    assert re.fullmatch(r"\d{8}T\d{6}Z", properties["DTSTAMP"])
    assert properties["DTSTART"] == "20260306T173000Z"
    assert properties["DTEND"] == "20260306T183000Z"
    assert properties["LOCATION"] == program.clinic.address.replace(",", "\\,")
    summary = properties["SUMMARY"]
    assert summary == f"Consultation at {program.clinic.sms_program_name}"
    for pattern in program.policy.content.sms_forbidden:  # no drug or diagnosis word
        assert not re.search(pattern, summary, re.IGNORECASE), pattern
    assert "Ann" not in raw_ics.decode()  # nothing the lead typed is in the file


def test_rule_17_a_marketing_email_waits_while_the_address_is_a_placeholder(
    make_settings: SettingsFactory,
    smtp_server: SmtpServer,
    basic_config_dir: Path,
    tmp_path: Path,
) -> None:
    placeholder = with_placeholder_address(basic_config_dir, tmp_path / "placeholder-config")
    held_by = build_services(
        make_settings(config_dir=placeholder, email_backend="smtp", smtp_url=smtp_server.url)
    )
    assert held_by.clinic.placeholders == ["address", "on_call_phone"]  # as shipped
    real = basic_config_dir
    try:
        with freeze_time("2026-03-03 18:00:00", tick=True) as frozen:
            lead_id = sign_up(held_by, phone=None, consent={"email_marketing": True})
            claim_and_send_all(held_by)  # the welcome: care e-mail still goes
            assert [r.message["Subject"] for r in smtp_server.wait_for(1)]
            frozen.tick(timedelta(days=2, minutes=1))
            claim_and_send_all(held_by)  # the follow-up: marketing, held
            with held_by.sessions() as session:
                rows = {m.step_key: m for m in messages_of(session, lead_id)}
            assert rows["welcome"].status is MessageStatus.SENT
            follow_up = rows["follow-up"]
            assert follow_up.status is MessageStatus.SCHEDULED
            assert follow_up.last_error is not None
            assert "postal address is a placeholder" in follow_up.last_error
            assert len(smtp_server.received) == 1
        held_by.close()

        # The clinic sets its real address and restarts: the held e-mail goes at its next look.
        sends = build_services(
            make_settings(config_dir=real, email_backend="smtp", smtp_url=smtp_server.url)
        )
        try:
            with freeze_time("2026-03-05 19:02:00", tick=True):
                claim_and_send_all(sends)
            with sends.sessions() as session:
                rows = {m.step_key: m for m in messages_of(session, lead_id)}
            assert rows["follow-up"].status is MessageStatus.SENT
            assert len(smtp_server.wait_for(2)) == 2
        finally:
            sends.close()
    finally:
        held_by.close()


def test_rule_17_the_embedded_outbox_writes_marketing_e_mail_with_a_placeholder_address(
    make_settings: SettingsFactory,
) -> None:
    services = build_services(make_settings())  # email_backend=outbox: it reaches no one
    try:
        with freeze_time("2026-03-03 18:00:00", tick=True) as frozen:
            lead_id = sign_up(services, phone=None, consent={"email_marketing": True})
            claim_and_send_all(services)
            frozen.tick(timedelta(days=2, minutes=1))
            claim_and_send_all(services)
        with services.sessions() as session:
            rows = {m.step_key: m for m in messages_of(session, lead_id)}
        assert rows["follow-up"].status is MessageStatus.SENT
    finally:
        services.close()


@pytest.mark.parametrize("backend", ["outbox", "smtp"])
def test_rule_17_nurture_run_names_each_placeholder_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    from click.testing import CliRunner

    from nurture.cli import cli
    from nurture.config.settings import get_settings

    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'run.db'}")
    monkeypatch.setenv("NURTURE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NURTURE_CONFIG_DIR", str(REPO / "config"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("NURTURE_EMAIL_BACKEND", backend)
    monkeypatch.setenv("NURTURE_PUBLIC_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("NURTURE_ALLOW_INSECURE_PUBLIC_URL", "1")
    plan = tmp_path / "plan.json"
    args = ["prepare-run", "--host", "127.0.0.1", "--port", "8000", "--concurrency", "1"]
    get_settings.cache_clear()  # read once per process: this one reads this test's environment
    try:
        result = CliRunner().invoke(cli, [*args, "--plan", str(plan)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "placeholder" in line]
    assert len(warnings) == 2, result.stderr
    assert "address" in warnings[0] and "CAN-SPAM" in warnings[0]
    assert ("marketing e-mail is held" in warnings[0]) is (backend == "smtp")
    assert "on_call_phone" in warnings[1]
