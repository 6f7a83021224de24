"""config/integrations.yaml: which booking event types count as the consult, with errors that
name the file, the line and the key, and a process that refuses to start on a bad file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from nurture.cli import cli
from nurture.config.integrations import Integrations, load_integrations
from nurture.config.settings import get_settings
from nurture.config.yamlconf import ConfigError
from tests.conftest import REPO


def test_the_shipped_file_counts_every_booking() -> None:
    integrations = load_integrations(REPO / "config")
    assert integrations == Integrations()
    assert integrations.counts_as_consult("calendly", ("Anything at all",))


def test_listed_names_and_ids_match_without_case(tmp_path: Path) -> None:
    (tmp_path / "integrations.yaml").write_text(
        "consult_event_types:\n  calcom: [42, Consultation]\n  square: []\n"
    )
    integrations = load_integrations(tmp_path)
    assert integrations.counts_as_consult("calcom", ("42",))
    assert integrations.counts_as_consult("calcom", ("7", "consultation"))
    assert not integrations.counts_as_consult("calcom", ("7", "infusion"))
    assert integrations.counts_as_consult("square", ("anything",))


def test_no_file_means_every_booking_counts(tmp_path: Path) -> None:
    assert load_integrations(tmp_path) == Integrations()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("consult_event_types:\n  zoom: []\n", "integrations.yaml:2: consult_event_types.zoom"),
        ("consult_event_types:\n  calendly: [a, a]\n", "'a' is listed twice"),
        ("consult_event_types:\n  calendly: Consult\n", "must be a list"),
        ("consult_event_types:\n  acuity: [' ']\n", "blank"),
        ("consult_event_types:\n  acuity: [{a: 1}]\n", "is not an event type name or id"),
        ("consult_types: {}\n", "integrations.yaml:1: consult_types"),
        ("consult_event_types: [\n", "not valid YAML"),
    ],
)
def test_problems_name_file_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "integrations.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_integrations(tmp_path)
    assert problem in str(raised.value)


def test_a_process_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "integrations.yaml").write_text("consult_event_types:\n  calendly: [x, x]\n")
    env = {"NURTURE_CONFIG_DIR": str(config), "NURTURE_VAR_DIR": str(tmp_path / "var")}
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "1"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "integrations.yaml:2: consult_event_types.calendly: 'x' is listed twice" in result.output
