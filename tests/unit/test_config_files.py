"""Configuration files: a bad file is refused with file, line and reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from nurture.config.clinic import load_clinic
from nurture.config.durations import format_duration, parse_duration
from nurture.config.yamlconf import ConfigError
from nurture.db.models import Channel
from nurture.program.sequences import load_catalog
from tests.conftest import REPO

GOOD = """\
key: demo
name: Demo
version: 1
trigger: signed_up
exit_on: [consult_booked]
steps:
  - key: hello
    channel: sms
    purpose: optin
    template: optin-confirmation
    offset: 0s
  - key: later
    channel: email
    purpose: marketing
    template: welcome
    offset: 2d
    at: "10:00"
"""
TEMPLATES = {(Channel.SMS, "optin-confirmation"), (Channel.EMAIL, "welcome")}


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    directory = tmp_path / "sequences"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(directory, templates=TEMPLATES)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_file_loads(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD), templates=TEMPLATES)
    sequence = catalog.by_key["demo"]
    assert [step.offset for step in sequence.steps] == [timedelta(0), timedelta(days=2)]
    assert str(sequence.steps[1].at) == "10:00:00"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("offset: 2d", "offset: 2 weeks"),
            "demo.yaml:16: steps[1] (later).offset: bad duration '2 weeks'",
        ),
        (
            ("channel: email", "channel: fax"),
            "demo.yaml:13: steps[1] (later).channel: Input should be 'email' or 'sms'",
        ),
        (
            ("template: welcome", "template: nope"),
            "demo.yaml:15: steps[1] (later).template: no email template 'nope'",
        ),
        (("key: later", "key: hello"), "demo.yaml:6: steps: duplicate step key 'hello'"),
        (("trigger: signed_up", "trigger: signed_in"), "demo.yaml:4: trigger: Input should be"),
        (
            ("version: 1", "version: 0"),
            "demo.yaml:3: version: Input should be greater than or equal to 1",
        ),
        (('at: "10:00"', 'at: "25:00"'), "demo.yaml:17: steps[1] (later).at: bad time '25:00'"),
        (
            ("    offset: 0s\n", "    offset: 0s\n    colour: red\n"),
            "demo.yaml:12: steps[0] (hello).colour: Extra inputs",
        ),
        (("name: Demo\n", "name: Demo\nname: Again\n"), "demo.yaml:3: name: duplicate key"),
        (("steps:", "steps: ["), "demo.yaml:"),
        (
            ('at: "10:00"', 'at: "10:00"\n    when: "lead.stage =="'),
            "steps[1] (later).when: bad condition",
        ),
        (
            ("trigger: signed_up", "trigger: signed_up\nreenter: sometimes"),
            "reenter: Input should be a valid boolean",
        ),
        (
            ("channel: sms", "channel: email"),
            "steps[0] (hello): purpose optin is the SMS opt-in confirmation",
        ),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    found = problems(write(tmp_path, GOOD.replace(*change, 1)))
    assert any(expected in problem for problem in found), found


def test_two_files_with_one_key_are_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    found = problems(write(tmp_path, GOOD, "b.yaml"))
    assert any("b.yaml:1: key: 'demo' is also used by" in problem for problem in found), found


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("offset: 2d", "offset: soon").replace("channel: sms", "channel: pager")
    assert len(problems(write(tmp_path, text))) >= 2


def test_an_unquoted_time_is_understood(tmp_path: Path) -> None:
    catalog = load_catalog(
        write(tmp_path, GOOD.replace('at: "10:00"', "at: 10:00")), templates=TEMPLATES
    )
    assert str(catalog.by_key["demo"].steps[1].at) == "10:00:00"


def test_the_shipped_configuration_loads() -> None:
    from nurture.content.template_store import FileTemplateStore

    catalog = load_catalog(
        REPO / "config/sequences", templates=FileTemplateStore(REPO / "templates").available()
    )
    assert "consult-nurture" in catalog.by_key
    assert load_clinic(REPO / "config").timezone == "America/Boise"


def test_a_bad_clinic_file_names_the_field(tmp_path: Path) -> None:
    text = (
        (REPO / "config/clinic.yaml")
        .read_text()
        .replace("timezone: America/Boise", "timezone: Mars/Base")
    )
    (tmp_path / "clinic.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"clinic.yaml:\d+: timezone: unknown IANA time zone"):
        load_clinic(tmp_path)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0s", timedelta()),
        ("90m", timedelta(minutes=90)),
        ("-24h", timedelta(hours=-24)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_durations_round_trip(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("text", ["", "2", "d", "2w", "1.5h", "--2d", "2d-1h", "two days"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="use a number and a unit"):
        parse_duration(text)
