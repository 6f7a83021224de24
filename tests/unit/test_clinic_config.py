"""config/clinic.yaml: the on-call phone and staffed hours the crisis path relies on (rule 26)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.config.clinic import load_clinic
from nurture.config.yamlconf import ConfigError
from tests.conftest import REPO


def clinic_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "config/clinic.yaml").read_text()
    assert old in text
    (tmp_path / "clinic.yaml").write_text(text.replace(old, new))
    return tmp_path


def test_rule_26_the_shipped_clinic_names_an_on_call_phone_and_staffed_hours() -> None:
    clinic = load_clinic(REPO / "config")
    assert clinic.on_call_phone.startswith("+1")
    assert clinic.staffed_hours == "Mon-Fri 8am-6pm Mountain"


@pytest.mark.parametrize("phone", ["(208) 555-0199", "2085550199", "+1208555", "+15555550199"])
def test_rule_26_an_on_call_phone_that_is_not_e164_is_refused(tmp_path: Path, phone: str) -> None:
    config = clinic_with(tmp_path, '"+12085550199"', f'"{phone}"')
    with pytest.raises(ConfigError, match="on_call_phone"):
        load_clinic(config)


@pytest.mark.parametrize("field", ["on_call_phone", "staffed_hours"])
def test_rule_26_the_crisis_fields_are_required(tmp_path: Path, field: str) -> None:
    text = (REPO / "config/clinic.yaml").read_text()
    kept = "\n".join(line for line in text.splitlines() if not line.startswith(f"{field}:"))
    (tmp_path / "clinic.yaml").write_text(kept)
    with pytest.raises(ConfigError, match=field):
        load_clinic(tmp_path)


def test_rule_26_staffed_hours_must_say_something(tmp_path: Path) -> None:
    config = clinic_with(tmp_path, '"Mon-Fri 8am-6pm Mountain"', '"24/7"')
    with pytest.raises(ConfigError, match="staffed_hours"):
        load_clinic(config)
