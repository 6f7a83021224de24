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
