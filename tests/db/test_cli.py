"""The CLI: wrong input or configuration exits 2 with a message that says what and where."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from nurture.cli import cli
from nurture.settings import get_settings
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


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


def test_consent_export_prints_the_whole_history(tmp_path: Path) -> None:
    import csv
    import io
    import json

    from nurture import migrations
    from nurture.services import build_services
    from nurture.settings import Settings
    from tests.support.factories import sign_up

    env = {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path),
    }
    settings = Settings(
        var_dir=tmp_path, config_dir=REPO / "config", templates_dir=REPO / "templates"
    )
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        lead_id = sign_up(services, consent={"sms_marketing": True})
    finally:
        services.close()
    code, output = run(["consent", "export", "(208) 555-0123"], env)
    assert code == 0, output
    history = json.loads(output)
    assert history["lead_id"] == str(lead_id)
    assert [(e["channel"], e["purpose"], e["action"]) for e in history["events"]] == [
        ("email", "care", "granted"),
        ("sms", "marketing", "granted"),
    ]
    assert history["events"][1]["evidence"]["disclosure_text"]
    code, output = run(["consent", "export", str(lead_id), "--format", "csv"], env)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["action"] for row in rows] == ["granted", "granted"]
    code, output = run(["consent", "export", "nobody@example.com"], env)
    assert code == 2
    assert "no lead matches 'nobody@example.com'" in output


def test_staff_record_lifecycle_events_from_the_command_line(tmp_path: Path) -> None:
    from nurture import migrations
    from nurture.services import build_services
    from nurture.settings import Settings
    from tests.support.factories import sign_up

    env = {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path),
    }
    settings = Settings(
        var_dir=tmp_path, config_dir=REPO / "config", templates_dir=REPO / "templates"
    )
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
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
