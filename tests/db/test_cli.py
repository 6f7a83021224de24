"""The CLI: wrong input or configuration exits 2 with a message that says what and where."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from nurture.cli import cli
from nurture.config.settings import Settings, get_settings
from nurture.db import migrations
from nurture.db.models import AuditEvent
from nurture.runtime import Services, build_services
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


def _embedded(tmp_path: Path, templates: Path | None = None) -> dict[str, str]:
    return {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(templates or REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path),
    }


def _embedded_services(tmp_path: Path) -> Services:
    """The embedded database the commands above use, migrated, for setting up test data."""
    settings = Settings(
        var_dir=tmp_path, config_dir=REPO / "config", templates_dir=REPO / "templates"
    )
    migrations.upgrade(settings.resolved_database_url)
    return build_services(settings)


def test_sequences_validate_accepts_the_shipped_program(tmp_path: Path) -> None:
    code, output = run(
        ["sequences", "validate"],
        {
            "NURTURE_CONFIG_DIR": str(REPO / "config"),
            "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
            "NURTURE_VAR_DIR": str(tmp_path),
        },
    )
    assert code == 0, output
    assert output.startswith("ok: ")


def test_a_broken_sequence_file_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    path = config / "sequences" / "consult-nurture.yaml"
    path.write_text(path.read_text().replace("offset: 2d", "offset: two days"))
    code, output = run(
        ["sequences", "validate"],
        {
            "NURTURE_CONFIG_DIR": str(config),
            "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
            "NURTURE_VAR_DIR": str(tmp_path),
        },
    )
    assert code == 2
    assert "consult-nurture.yaml:" in output
    assert "offset: bad duration 'two days'" in output
    assert "Traceback" not in output


def test_bad_environment_exits_2_naming_the_variable(tmp_path: Path) -> None:
    code, output = run(
        ["db", "upgrade"], {"NURTURE_DISPATCH_INTERVAL": "soon", "NURTURE_VAR_DIR": str(tmp_path)}
    )
    assert code == 2
    assert "NURTURE_DISPATCH_INTERVAL" in output
    assert "Traceback" not in output


def test_db_upgrade_migrates_the_embedded_database(tmp_path: Path) -> None:
    code, output = run(["db", "upgrade"], {"NURTURE_VAR_DIR": str(tmp_path)})
    assert code == 0, output
    assert (tmp_path / "nurture.sqlite3").is_file()
    assert "database at revision" in output


def test_unknown_command_is_a_usage_error() -> None:
    code, output = run(["frobnicate"], {})
    assert code == 2
    assert "No such command" in output


def test_rule_1_consent_export_names_the_person_and_each_events_wording(tmp_path: Path) -> None:
    import csv
    import io
    import json

    from nurture.consent import disclosures
    from nurture.leads.intake import parse_signup, submit_signup
    from tests.support.factories import EVIDENCE, signup_data

    env = _embedded(tmp_path)
    services = _embedded_services(tmp_path)
    shown = disclosures.Shown(
        wording=services.disclosures, seller=services.clinic.name, boxes_started_unticked=True
    )
    try:
        lead_id = submit_signup(
            services.sessions,
            parse_signup(
                signup_data(
                    consent={"sms_marketing": True, "sms_care": True},
                    consent_version=services.disclosures.version,
                )
            ),
            EVIDENCE,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            shown=shown,
        ).lead_id
        wording = services.disclosures
    finally:
        services.close()
    code, output = run(["consent", "export", "(208) 555-0123"], env)
    assert code == 0, output
    history = json.loads(output)
    assert history["lead_id"] == str(lead_id)
    assert (history["name"], history["email"], history["phone"]) == (
        "Ana Rivera",
        "ana.rivera@example.com",
        "+12085550123",
    )
    events = {(e["channel"], e["purpose"]): e for e in history["events"]}
    assert list(events) == [("email", "care"), ("sms", "care"), ("sms", "marketing")]
    for key, box in ((("sms", "care"), "sms_care"), (("sms", "marketing"), "sms_marketing")):
        assert events[key]["action"] == "granted"
        assert events[key]["disclosure_version"] == wording.version
        assert events[key]["disclosure_text"] == getattr(wording, box)
    # Rule 22: the care grant shows that the person was told texts are not encrypted.
    assert events[("sms", "care")]["unencrypted_ack"]["wording"] == wording.sms_care
    assert events[("sms", "marketing")]["unencrypted_ack"] is None
    code, output = run(["consent", "export", str(lead_id), "--format", "csv"], env)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["action"] for row in rows] == ["granted", "granted", "granted"]
    assert {row["name"] for row in rows} == {"Ana Rivera"}
    assert rows[2]["disclosure_text"] == wording.sms_marketing
    assert rows[1]["unencrypted_ack_at"]
    code, output = run(["consent", "export", "nobody@example.com"], env)
    assert code == 2
    assert "no lead matches 'nobody@example.com'" in output


def test_staff_record_lifecycle_events_from_the_command_line(tmp_path: Path) -> None:
    from tests.support.factories import sign_up

    env = _embedded(tmp_path)
    services = _embedded_services(tmp_path)
    try:
        sign_up(services)
    finally:
        services.close()
    code, output = run(
        [
            "leads",
            "event",
            "ana.rivera@example.com",
            "consult_booked",
            "--at",
            "2099-03-03T10:00:00-07:00",
        ],
        env,
    )
    assert code == 0, output
    assert "stage booked, consult 2099-03-03T17:00:00+00:00" in output
    assert "exited consult-nurture" in output and "enrolled in consult-reminders" in output
    code, output = run(
        [
            "leads",
            "event",
            "ana.rivera@example.com",
            "consult_booked",
            "--at",
            "2099-03-03T10:00:00-07:00",
        ],
        env,
    )
    assert "nothing changed" in output
    for args, fragment in [
        (
            ["leads", "event", "ana.rivera@example.com", "consult_moved"],
            "unknown event 'consult_moved'",
        ),
        (["leads", "event", "ana.rivera@example.com", "consult_booked"], "needs consult_at"),
        (
            ["leads", "event", "ana.rivera@example.com", "consult_booked", "--at", "soon"],
            "not ISO 8601",
        ),
        (["leads", "event", "nobody@example.com", "no_show"], "no lead matches"),
    ]:
        code, output = run(args, env)
        assert code == 2, output
        assert fragment in output


def test_db_upgrade_imports_the_templates_and_sync_reports(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    code, output = run(["db", "upgrade"], env)
    assert code == 0, output
    assert "templates: sms/optin-confirmation: imported version 1 and published it" in output
    code, output = run(["templates", "sync"], env)
    assert code == 0
    assert "sms/help-reply: unchanged" in output


def test_templates_lint_preview_and_publish(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    env = _embedded(tmp_path, templates)
    assert run(["db", "upgrade"], env)[0] == 0
    code, output = run(["templates", "lint"], env)
    assert code == 0, output
    assert "sms/booking-nudge: ok" in output

    code, output = run(["templates", "preview", "sms/booking-nudge"], env)
    assert code == 0, output
    assert output.startswith("KI Idaho: ")
    assert "[GSM-7, " in output

    (templates / "sms" / "booking-nudge.txt.j2").write_text("{{ clinic.name }}: book now")
    code, output = run(["templates", "sync"], env)
    assert code == 0
    assert "sms/booking-nudge: imported version 2 as a draft, NOT published" in output
    code, output = run(["templates", "lint", "sms/booking-nudge"], env)
    assert code == 0, output  # the live version is still the good one
    code, output = run(["templates", "publish", "sms/booking-nudge", "--version", "2"], env)
    assert code == 2
    assert "not published" in output
    assert "may not appear in a text" in output
    assert "must tell people how to opt out" in output
    code, output = run(["templates", "publish", "sms/booking-nudge", "--version", "1"], env)
    assert code == 0, output  # already live: nothing changes
    assert "version 1 is live" in output

    for args, fragment in [
        (["templates", "lint", "fax/x"], "name a template as email/<key> or sms/<key>"),
        (["templates", "lint", "sms/nope"], "no template sms/nope"),
        (["templates", "publish", "sms/booking-nudge", "--version", "99"], "has no version 99"),
    ]:
        code, output = run(args, env)
        assert code == 2, (args, output)
        assert fragment in output


def test_users_add_creates_and_updates_with_a_clear_error_for_weak_passwords(
    tmp_path: Path,
) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    result = CliRunner().invoke(
        cli,
        ["users", "add", "ops@clinic.example", "--role", "ops", "--password-stdin"],
        env=env,
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created ops@clinic.example (ops)" in result.output
    result = CliRunner().invoke(
        cli,
        ["users", "add", "ops@clinic.example", "--role", "admin", "--password-stdin"],
        env=env,
        input="another long password\n",
    )
    assert "updated ops@clinic.example (admin)" in result.output
    for weak, reason in [
        ("short", "at least 12 characters"),
        ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess'),
        (" " * 12, 'Repeats like "aaa" are easy to guess'),
        ("x@clinic.example", "built from the e-mail address or the clinic's name"),
        ("Ketamine Infusions of Idaho", "built from the e-mail address or the clinic's name"),
    ]:
        result = CliRunner().invoke(
            cli,
            ["users", "add", "x@clinic.example", "--role", "ops", "--password-stdin"],
            env=env,
            input=f"{weak}\n",
        )
        assert result.exit_code == 2, (weak, result.output)
        assert reason in result.output, weak


def test_ops_commands(tmp_path: Path) -> None:
    import json

    from sqlalchemy import select, update

    from nurture import clock
    from nurture.db.models import Message, MessageStatus, Pause
    from tests.support.factories import sign_up

    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    services = _embedded_services(tmp_path)
    try:
        lead_id = sign_up(services)
        with services.sessions.begin() as session:
            ids = session.scalars(
                select(Message.id).where(Message.lead_id == lead_id).order_by(Message.id)
            ).all()
            session.execute(
                update(Message)
                .where(Message.id == ids[0])
                .values(status=MessageStatus.FAILED, error_code="21211")
            )
            session.execute(
                update(Message)
                .where(Message.id == ids[1])
                .values(status=MessageStatus.UNKNOWN, status_at=clock.utcnow())
            )
    finally:
        services.close()

    code, output = run(["ops", "status"], env)
    assert code == 0, output
    assert "queues: dispatch 0, email 0, sms 0" in output
    assert "unknown rows: 1" in output
    code, output = run(["ops", "status", "--json"], env)
    snapshot = json.loads(output)
    assert snapshot["counts"]["failed"]["sms"] == 1
    assert snapshot["failures_by_code"] == {"21211": 1}

    code, output = run(["ops", "pause", "channel", "sms", "--reason", "carrier complaint"], env)
    assert code == 0 and "paused #1: channel sms" in output
    assert "PAUSED #1 channel sms: carrier complaint" in run(["ops", "status"], env)[1]
    assert (
        run(["ops", "pause", "channel", "fax", "--reason", "x"], env)[1].count("use email or sms")
        == 1
    )
    code, output = run(["ops", "resume", "1", "--overdue", "skip"], env)
    assert code == 0 and "resumed #1" in output

    code, output = run(["ops", "retry", "--code", "21211"], env)
    assert code == 0 and "1 message(s) scheduled again" in output
    code, output = run(["ops", "resend", str(ids[1])], env)
    assert code == 2 and "may duplicate" in output
    code, output = run(["ops", "settle", str(ids[1]), "--provider-id", "SM123"], env)
    assert code == 0 and "settled as sent" in output
    code, output = run(["ops", "settle", str(ids[1]), "--provider-id", "SM123"], env)
    assert code == 2 and "is not unknown" in output
    code, output = run(["ops", "purge", "--older-than-days", "1"], env)
    assert code == 0 and "message bodies deleted" in output

    services = _embedded_services(tmp_path)
    try:
        with services.sessions() as session:
            ended_by = session.get_one(Pause, 1).ended_by
            assert ended_by is not None
            assert ended_by.startswith("cli:") and ended_by != "cli:"  # the login name
            rows = {m.id: m for m in session.scalars(select(Message))}
        assert rows[ids[0]].status is MessageStatus.SCHEDULED
        assert rows[ids[1]].status is MessageStatus.SENT and rows[ids[1]].provider_id == "SM123"
    finally:
        services.close()


def _add(env: dict[str, str], email: str, role: str, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [*more, "users", "add", email, "--role", role, "--password-stdin"],
        env=env,
        input="a long enough password\n",
    )
    return result.exit_code, result.output


def test_users_list_and_deactivate_audited_under_the_person_who_ran_them(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    assert run(["users", "list"], env) == (
        0,
        "no staff accounts yet: add one with `nurture users add EMAIL --role admin`\n",
    )
    assert _add(env, "boss@clinic.example", "admin", "--as", "Dr. Reyes")[0] == 0
    assert _add(env, "desk@clinic.example", "ops")[0] == 0

    code, output = run(["--as", "Dr. Reyes", "users", "deactivate", "desk@clinic.example"], env)
    assert code == 0, output
    assert "deactivated desk@clinic.example" in output
    code, output = run(["users", "list"], env)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["e-mail", "role", "state", "last", "sign-in"]
    assert lines[1].split() == ["boss@clinic.example", "admin", "active", "never"]
    assert lines[2].split() == ["desk@clinic.example", "ops", "deactivated", "never"]

    code, output = run(["users", "deactivate", "boss@clinic.example"], env)
    assert code == 2
    assert "last active admin" in output
    code, output = run(["users", "deactivate", "nobody@clinic.example"], env)
    assert (code, output.strip()) == (2, "Error: no staff account 'nobody@clinic.example'")

    services = _embedded_services(tmp_path)
    try:
        with services.sessions() as session:
            entries = session.execute(
                select(AuditEvent.actor, AuditEvent.action).order_by(AuditEvent.id)
            ).all()
    finally:
        services.close()
    staff_entries = [tuple(entry) for entry in entries if entry.action.startswith("staff.")]
    assert staff_entries[0] == ("cli:Dr. Reyes", "staff.user_saved")
    assert staff_entries[1][0].startswith("cli:") and staff_entries[1][0] != "cli:"
    assert staff_entries[-1] == ("cli:Dr. Reyes", "staff.user_deactivated")


def test_users_add_without_a_terminal_or_password_stdin_says_how_instead_of_aborting(
    tmp_path: Path,
) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    code, output = run(["users", "add", "x@clinic.example", "--role", "ops"], env)
    assert code == 2
    assert "no terminal to ask for the password on: pipe it to --password-stdin" in output
    assert "Aborted" not in output


def test_templates_preview_of_a_missing_template_or_version_is_a_usage_error(
    tmp_path: Path,
) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    for args, fragment in [
        (["templates", "preview", "email/nope"], "no email template 'nope'"),
        (["templates", "preview", "sms/booking-nudge", "--version", "99"], "has no version 99"),
    ]:
        code, output = run(args, env)
        assert code == 2, (args, output)
        assert fragment in output
        assert "Traceback" not in output


def test_an_unforeseen_failure_is_two_lines_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    from nurture import staff

    def broken(session: object) -> list[object]:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(staff, "all_users", broken)
    result = CliRunner().invoke(cli, ["users", "list"], env=env)
    assert result.exit_code == 1
    assert result.output == (
        "Error: unexpected error (RuntimeError): the disk is on fire\n"
        "Nothing more was done. Run it again with NURTURE_DEBUG=1 to see the traceback.\n"
    )
    result = CliRunner().invoke(cli, ["users", "list"], env={**env, "NURTURE_DEBUG": "1"})
    assert isinstance(result.exception, RuntimeError)  # the engineer gets the real thing


def test_leads_show_prints_each_pending_message_with_when_and_why(tmp_path: Path) -> None:
    from freezegun import freeze_time

    from tests.support.factories import sign_up

    env = _embedded(tmp_path)
    services = _embedded_services(tmp_path)
    try:
        # 03:00 in Boise (ZIP 83402): the opt-in text must wait for the morning.
        with freeze_time("2026-03-03 10:00:00"):
            sign_up(services)
    finally:
        services.close()
    with freeze_time("2026-03-03 10:00:05"):
        code, output = run(["leads", "show", "ana.rivera@example.com"], env)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("Ana R")
    assert "time zone America/Boise: from ZIP code 83402" in lines[1]
    assert lines[2].startswith("consent: email ")
    assert lines[3].startswith("pending messages: ")
    [optin] = [line for line in lines if " sms optin " in line]
    assert "scheduled, goes Tue 2026-03-03 08:00 their time (15:00 UTC)" in optin
    assert optin.endswith("waits for the sending hours in their zone")
    code, output = run(["leads", "show", "nobody@example.com"], env)
    assert code == 2
    assert "no lead matches 'nobody@example.com'" in output
