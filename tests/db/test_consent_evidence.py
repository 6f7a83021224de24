"""Consent evidence that would hold up in a TCPA dispute (rules 1, 11) and the unencrypted
acknowledgement of texts about care (rule 22), over real HTTP (in-process ASGI) and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from nurture import clock, consent
from nurture.cli import cli
from nurture.config.clinic import Disclosures, load_disclosures
from nurture.config.settings import get_settings
from nurture.consent import disclosures, ledger
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    DisclosureVersion,
    Lead,
    Purpose,
)
from nurture.runtime import Services
from tests.conftest import REPO
from tests.support.api import API_KEY, api_signup_data
from tests.support.factories import sign_up
from tests.support.smtp_server import free_port

OLD_VERSION = "2026-06-01"
OLD_CARE_WORDING = (
    "Yes, Ketamine Infusions of Idaho may text me reminders about my appointments. Consent is "
    "not a condition of any purchase. Reply STOP to opt out."
)


def grants(services: Services) -> dict[tuple[Channel, Purpose], ConsentEvent]:
    with services.sessions() as session:
        return {
            (event.channel, event.purpose): event for event in session.scalars(select(ConsentEvent))
        }


def leads(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Lead)) or 0)


def record_old_version(services: Services) -> Disclosures:
    """A version people were shown before the current one, on record."""
    old = Disclosures(
        version=OLD_VERSION,
        email_marketing=services.disclosures.email_marketing,
        sms_marketing=services.disclosures.sms_marketing,
        sms_care=OLD_CARE_WORDING,
    )
    with services.sessions.begin() as session:
        assert disclosures.record_current(session, old, now=clock.utcnow())
    return old


# --- The API is for the clinic's own systems -------------------------------------------------


def test_rule_1_the_signup_api_needs_the_api_key(client: TestClient, services: Services) -> None:
    body = api_signup_data(consent_text="ok")
    assert client.post("/api/v1/signups", json=body).status_code == 401
    wrong = client.post("/api/v1/signups", json=body, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert "API key" in wrong.json()["detail"]
    form = client.post("/api/v1/signups", data={"first_name": "Al", "email": "al@example.com"})
    assert form.status_code == 401
    assert leads(services) == 0


def test_rule_1_the_api_records_the_servers_own_wording_of_each_box(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/api/v1/signups",
        json=api_signup_data(
            consent={"email_marketing": True, "sms_marketing": True, "sms_care": True},
            consent_text="ok",
            source={"page_url": "https://clinic.example/consult"},
        ),
        headers={**API_KEY, "user-agent": "python-requests/2.32"},
    )
    assert response.status_code == 201, response.text
    recorded = grants(services)
    for (channel, purpose), box in {
        (Channel.EMAIL, Purpose.MARKETING): "email_marketing",
        (Channel.SMS, Purpose.MARKETING): "sms_marketing",
        (Channel.SMS, Purpose.CARE): "sms_care",
    }.items():
        evidence = recorded[(channel, purpose)].evidence
        # Its own box's wording, never every ticked box joined, never the caller's "ok".
        assert evidence["disclosure_text"] == getattr(services.disclosures, box)
        assert evidence["disclosure_version"] == services.disclosures.version
        assert evidence["checkbox"] == box
        assert evidence["caller_claim"] == "ok"
        assert evidence["seller"] == services.clinic.name
        # The clinic's page drew the boxes: nurture cannot say how they started.
        assert evidence["box_started_unticked"] is None
        assert evidence["page_url"] == "https://clinic.example/consult"
        assert evidence["user_agent"] == "python-requests/2.32"
        assert evidence["name"] == "Ana Rivera"
    assert recorded[(Channel.SMS, Purpose.MARKETING)].evidence["phone"] == "+12085550123"
    assert "phone" not in recorded[(Channel.EMAIL, Purpose.MARKETING)].evidence


def test_rule_11_a_script_cannot_turn_texts_back_on_after_a_stop(
    client: TestClient, services: Services
) -> None:
    """Only START, YES or UNSTOP restores texts: a sign-up posted by anyone with the number and
    "ok" as its wording no longer grants them (it did, before the API needed its key)."""
    lead_id = sign_up(services, consent={"sms_marketing": True, "sms_care": True})
    with services.sessions.begin() as session:
        for purpose in (Purpose.CARE, Purpose.MARKETING):
            ledger.record(
                session,
                lead_id=lead_id,
                channel=Channel.SMS,
                purpose=purpose,
                action=ConsentAction.REVOKED,
                source=ConsentSource.SMS_KEYWORD,
                evidence={"body": "STOP"},
                actor="lead",
            )
    body = api_signup_data(
        consent={"sms_marketing": True, "sms_care": True}, consent_text="ok", consent_version=None
    )
    response = client.post("/api/v1/signups", json=body, headers={"user-agent": "curl/8.5"})
    assert response.status_code == 401
    with services.sessions() as session:
        state = consent.current(session, lead_id)
    assert not state.allows(Channel.SMS, Purpose.MARKETING)
    assert not state.allows(Channel.SMS, Purpose.CARE)


@pytest.mark.parametrize("version", ["1999-01-01", None])
def test_rule_1_an_unknown_or_missing_version_is_422_naming_the_known_ones(
    client: TestClient, services: Services, version: str | None
) -> None:
    record_old_version(services)
    response = client.post(
        "/api/v1/signups",
        json=api_signup_data(consent_version=version, consent_text="I agree"),
        headers=API_KEY,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "consent_version"
    assert f"{services.disclosures.version}, {OLD_VERSION}" in error["message"]
    if version is not None:
        assert repr(version) in error["message"]
    assert leads(services) == 0


def test_rule_1_an_older_version_on_record_is_recorded_with_its_own_wording(
    client: TestClient, services: Services
) -> None:
    record_old_version(services)
    response = client.post(
        "/api/v1/signups",
        json=api_signup_data(consent={"sms_care": True}, consent_version=OLD_VERSION),
        headers=API_KEY,
    )
    assert response.status_code == 201, response.text
    evidence = grants(services)[(Channel.SMS, Purpose.CARE)].evidence
    assert evidence["disclosure_version"] == OLD_VERSION
    assert evidence["disclosure_text"] == OLD_CARE_WORDING
    # That wording never warned that texts are not encrypted: no acknowledgement (rule 22).
    assert "unencrypted_ack" not in evidence


# --- The hosted form ---------------------------------------------------------------------------


def test_rule_1_the_hosted_form_records_each_box_unticked_with_its_own_wording(
    client: TestClient, services: Services
) -> None:
    page = client.get("/consult")
    assert page.status_code == 200
    for box in disclosures.BOXES:
        assert f'name="{box}" value="on">' in page.text  # present and not ticked
    assert f'name="consent_version" value="{services.disclosures.version}"' in page.text
    response = client.post(
        "/consult",
        data={
            "first_name": "Cy",
            "last_name": "Moreno",
            "email": "cy@example.com",
            "phone": "(208) 555-0177",
            "sms_marketing": "on",
            "sms_care": "on",
            "consent_version": services.disclosures.version,
            "consent_text": "forged",
        },
        headers={"user-agent": "Browser/1.0"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    recorded = grants(services)
    for purpose, box in ((Purpose.MARKETING, "sms_marketing"), (Purpose.CARE, "sms_care")):
        evidence = recorded[(Channel.SMS, purpose)].evidence
        assert evidence["disclosure_text"] == getattr(services.disclosures, box)
        assert evidence["disclosure_version"] == services.disclosures.version
        assert evidence["box_started_unticked"] is True
        assert evidence["checkbox"] == box
        assert evidence["seller"] == "Ketamine Infusions of Idaho"
        assert evidence["phone"] == "+12085550177"
        assert evidence["name"] == "Cy Moreno"
        assert evidence["user_agent"] == "Browser/1.0"
        assert evidence["page_url"].endswith("/consult")
        assert "caller_claim" not in evidence  # the browser's text is not even a claim here
    assert (Channel.EMAIL, Purpose.MARKETING) not in recorded  # that box stayed unticked


def test_rule_1_the_form_records_the_version_its_page_showed(
    client: TestClient, services: Services
) -> None:
    """A page drawn before a restart with new wording is recorded with the wording it showed."""
    record_old_version(services)
    response = client.post(
        "/consult",
        data={
            "first_name": "Di",
            "phone": "2085550178",
            "sms_care": "on",
            "consent_version": OLD_VERSION,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    evidence = grants(services)[(Channel.SMS, Purpose.CARE)].evidence
    assert (evidence["disclosure_version"], evidence["disclosure_text"]) == (
        OLD_VERSION,
        OLD_CARE_WORDING,
    )
    # A version the server never showed is not believed: the current wording is recorded.
    client.post(
        "/consult",
        data={"first_name": "Ed", "phone": "2085550179", "sms_care": "on", "consent_version": "x"},
        follow_redirects=False,
    )
    with services.sessions() as session:
        latest = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    assert latest is not None
    assert latest.evidence["disclosure_version"] == services.disclosures.version


# --- Every version is kept, never edited ------------------------------------------------------


def test_rule_1_a_disclosure_version_is_kept_and_never_edited_in_place(
    services: Services,
) -> None:
    current = services.disclosures
    with services.sessions.begin() as session:
        assert disclosures.record_current(session, current, now=clock.utcnow()) is True
        assert disclosures.record_current(session, current, now=clock.utcnow()) is False
    edited = current.model_copy(update={"sms_care": current.sms_care + " Edited."})
    with (
        services.sessions.begin() as session,
        pytest.raises(disclosures.DisclosureEditedError) as caught,
    ):
        disclosures.record_current(session, edited, now=clock.utcnow())
    assert caught.value.boxes == ["sms_care"]
    assert repr(current.version) in str(caught.value)
    assert "new version" in str(caught.value)
    # The database itself refuses to rewrite or remove wording on record.
    for statement in (
        "UPDATE disclosure_versions SET sms_care = 'other words'",
        "DELETE FROM disclosure_versions",
    ):
        with services.sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
    with services.sessions() as session:
        row = session.get_one(DisclosureVersion, current.version)
        assert row.sms_care == current.sms_care


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_rule_1_nurture_refuses_to_start_with_wording_edited_in_place(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    env = {
        "NURTURE_CONFIG_DIR": str(config),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path / "var"),
    }
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade"], env=env)
    version = load_disclosures(config).version
    assert first.exit_code == 0, first.output
    assert f"disclosures: recorded version {version}" in first.output
    path = config / "disclosures.yaml"
    source = path.read_text()
    assert "and I choose to receive them anyway" in source
    path.write_text(source.replace("and I choose to receive them anyway", "and I accept that"))
    said = f"version {version!r}: the wording of sms_care differs"
    for command in (["db", "upgrade"], ["serve", "--port", str(free_port())]):
        result = runner.invoke(cli, command, env=env)
        assert result.exit_code == 2, (command, result.output)
        assert said in result.output
        assert "give the new wording a new version" in result.output
        assert "Traceback" not in result.output
    # `nurture run` prepares in a child process, which says why and passes on its exit code.
    run = subprocess.run(
        [sys.executable, "-m", "nurture", "run", "--port", str(free_port())],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert said in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    # A new version is the fix; the old one stays on record.
    path.write_text(path.read_text().replace(f'version: "{version}"', 'version: "2099-01-01"'))
    fixed = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert fixed.exit_code == 0, fixed.output
    assert "disclosures: recorded version 2099-01-01" in fixed.output


# --- Rule 22: texts about care are not encrypted, and the person was told ---------------------


def test_rule_22_the_care_wording_warns_that_texts_are_not_encrypted() -> None:
    care = load_disclosures(REPO / "config").sms_care
    assert disclosures.warns_unencrypted(care)
    assert "may read them" in care and "phone" in care


def test_rule_22_a_care_grant_by_text_records_the_unencrypted_acknowledgement(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/consult",
        data={
            "first_name": "Flo",
            "phone": "2085550180",
            "sms_care": "on",
            "sms_marketing": "on",
            "consent_version": services.disclosures.version,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    recorded = grants(services)
    care = recorded[(Channel.SMS, Purpose.CARE)]
    ack = care.evidence["unencrypted_ack"]
    assert ack["wording"] == services.disclosures.sms_care
    assert ack["channel"] == "sms"
    acknowledged_at = ack["acknowledged_at"]
    assert acknowledged_at.endswith("+00:00")
    assert abs((care.occurred_at - clock.utcnow()).total_seconds()) < 60
    # Marketing texts carry no care details: nothing to acknowledge there.
    assert "unencrypted_ack" not in recorded[(Channel.SMS, Purpose.MARKETING)].evidence


def test_rule_1_the_csv_export_never_hands_a_spreadsheet_a_formula(services: Services) -> None:
    import csv
    import io

    from nurture.consent.export import export

    lead_id = sign_up(services, first_name="=HYPERLINK(1)", consent={"sms_care": True})
    with services.sessions() as session:
        output = export(session, session.get_one(Lead, lead_id), "csv")
    rows = list(csv.DictReader(io.StringIO(output)))
    assert {row["name"] for row in rows} == {"'=HYPERLINK(1) Rivera"}
    assert {row["phone"] for row in rows} == {"+12085550123"}  # a phone number stays as it is
