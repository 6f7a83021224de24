"""A/B variants in a sequence file (issue 15 §3): a bad variant list is refused with the file,
line, step and reason, as every other sequence error is; every reader of a step's template sees
each variant's."""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.config.yamlconf import ConfigError
from nurture.content.lint import purposes_for
from nurture.db.models import Channel, Purpose
from nurture.program.sequences import load_catalog
from tests.conftest import FIXTURES, REPO

AB = """\
key: demo
name: Demo
version: 1
trigger: signed_up
steps:
  - key: hello
    channel: email
    purpose: care
    template: welcome
    offset: 0s
  - key: nudge
    channel: email
    purpose: marketing
    variants:
      - {name: A, template: follow-up, weight: 1}
      - {name: B, template: booking-nudge-1, weight: 3}
    offset: 2d
"""
TEMPLATES = {
    (Channel.EMAIL, "welcome"),
    (Channel.EMAIL, "follow-up"),
    (Channel.EMAIL, "booking-nudge-1"),
    (Channel.SMS, "booking-nudge"),
}
THIRD = "      - {name: B, template: booking-nudge-1, weight: 3}\n"


def write(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "sequences"
    directory.mkdir(exist_ok=True)
    (directory / "demo.yaml").write_text(text)
    return directory


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(write(tmp_path, text), templates=TEMPLATES)
    return [str(problem) for problem in caught.value.problems]


def test_a_step_with_variants_loads_with_all_its_templates(tmp_path: Path) -> None:
    step = load_catalog(write(tmp_path, AB), templates=TEMPLATES).by_key["demo"].steps[1]
    assert step.template is None
    assert step.templates == ("follow-up", "booking-nudge-1")
    assert [(v.name, v.template, v.weight) for v in step.variants or ()] == [
        ("A", "follow-up", 1),
        ("B", "booking-nudge-1", 3),
    ]
    b = step.variant("B")
    assert b is not None and b.template == "booking-nudge-1"
    assert step.variant("C") is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            (THIRD, ""),
            "demo.yaml:14: steps[1] (nudge).variants: an A/B test has 2 to 4 variants, not 1",
        ),
        (
            (
                THIRD,
                THIRD
                + "".join(
                    f"      - {{name: V{n}, template: welcome, weight: 1}}\n" for n in range(3)
                ),
            ),
            "steps[1] (nudge).variants: an A/B test has 2 to 4 variants, not 5",
        ),
        (
            ("name: B,", "name: A,"),
            "demo.yaml:14: steps[1] (nudge).variants: variant names must differ: 'A' repeated",
        ),
        (
            ("name: B,", "name: B two,"),
            "demo.yaml:16: steps[1] (nudge).variants[1].name: String should match pattern",
        ),
        (
            ("name: B,", f"name: {'B' * 41},"),
            "steps[1] (nudge).variants[1].name: String should have at most 40 characters",
        ),
        (
            ("weight: 3", "weight: 0"),
            "demo.yaml:16: steps[1] (nudge).variants[1].weight: Input should be greater than 0",
        ),
        (
            ("weight: 3", "weight: -2"),
            "steps[1] (nudge).variants[1].weight: Input should be greater than 0",
        ),
        (
            ("template: booking-nudge-1", "template: booking-nudge-9"),
            "demo.yaml:16: steps[1] (nudge).variants[1].template: "
            "no email template 'booking-nudge-9'",
        ),
        (
            # An SMS template of the same family is no e-mail template: checked per channel.
            ("template: booking-nudge-1", "template: booking-nudge"),
            "steps[1] (nudge).variants[1].template: no email template 'booking-nudge'",
        ),
        (
            ("template: booking-nudge-1", "template: Booking_Nudge"),
            "steps[1] (nudge).variants[1].template: String should match pattern",
        ),
        (
            ("    variants:\n", "    template: welcome\n    variants:\n"),
            "demo.yaml:11: steps[1] (nudge): give either template or variants, not both",
        ),
        (
            ("    variants:\n" + "      - {name: A, template: follow-up, weight: 1}\n" + THIRD, ""),
            "demo.yaml:11: steps[1] (nudge): give a template (or variants for an A/B test)",
        ),
        (
            ("weight: 3}", "weight: 3, colour: red}"),
            "steps[1] (nudge).variants[1].colour: Extra inputs are not permitted",
        ),
        (
            (
                "    variants:\n" + "      - {name: A, template: follow-up, weight: 1}\n" + THIRD,
                "    variants: []\n",
            ),
            "steps[1] (nudge).variants: an A/B test has 2 to 4 variants, not 0",
        ),
    ],
)
def test_a_bad_variant_list_is_refused_with_file_line_step_and_reason(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = AB.replace(*change, 1)
    assert text != AB, "the change did not apply"
    found = problems(text, tmp_path)
    assert any(expected in problem for problem in found), found


def test_the_studio_and_lint_see_every_variants_template_as_used_by_the_step(
    tmp_path: Path,
) -> None:
    catalog = load_catalog(write(tmp_path, AB), templates=TEMPLATES)
    # Marketing wording rules apply to a variant's template as to a plain step's.
    assert purposes_for(catalog, Channel.EMAIL, "booking-nudge-1") == {Purpose.MARKETING}
    assert purposes_for(catalog, Channel.EMAIL, "follow-up") == {Purpose.MARKETING}
    assert purposes_for(catalog, Channel.EMAIL, "welcome") == {Purpose.CARE}


def test_the_test_fixture_with_an_ab_test_loads_against_the_shipped_templates() -> None:
    from nurture.content.template_store import FileTemplateStore

    catalog = load_catalog(
        FIXTURES / "experiments" / "sequences",
        templates=FileTemplateStore(REPO / "templates").available(),
    )
    assert catalog.by_key["ab-nurture"].steps[1].templates == ("follow-up", "booking-nudge-1")
