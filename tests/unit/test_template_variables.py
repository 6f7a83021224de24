"""The variables a template can use, read off a real render context: the studio's picker and
lint's "did you mean" hints (issue 14); and the diff the publish review shows."""

from __future__ import annotations

from dataclasses import fields

import pytest
from jinja2 import meta

from nurture import content
from nurture.config.clinic import load_clinic
from nurture.content.render_budget import BudgetedSandbox
from nurture.content.rendering import LeadView, RenderContext
from nurture.content.samples import SAMPLE_ALERT, sample_leads
from nurture.content.variables import KnownNames, UnknownName, groups, unknown_names
from nurture.db.models import Purpose
from nurture.preview.source_diff import DiffLine, hunks
from tests.conftest import REPO


def context_for(purpose: Purpose = Purpose.MARKETING) -> RenderContext:
    return content.context_for(
        next(iter(sample_leads().values())),
        clinic=load_clinic(REPO / "config"),
        public_url="https://nurture.test",
        secret=b"test",
        purpose=purpose,
        alert=SAMPLE_ALERT if purpose is Purpose.ALERT else None,
    )


def unknown(source: str, purpose: Purpose = Purpose.MARKETING) -> list[UnknownName]:
    tree = BudgetedSandbox().parse(source)
    return unknown_names(
        tree,
        KnownNames.of(context_for(purpose)),
        undeclared=meta.find_undeclared_variables(tree),
    )


def test_the_picker_lists_every_field_of_the_views_with_the_sample_value() -> None:
    found = {g.name: g for g in groups(context_for())}
    assert list(found) == ["lead", "clinic", "consult", "links", "other"]
    lead = {v.name: v.example for v in found["lead"].variables}
    assert set(lead) == {f"lead.{f.name}" for f in fields(LeadView)}  # read off the view
    assert lead["lead.first_name"] == "Maximiliana"
    assert lead["lead.attributes"] == "(a mapping, empty for this sample)"
    assert {v.name for v in found["other"].variables} == {"marketing", "audience"}
    assert "alert" not in found  # empty outside staff alerts
    alert = {g.name: g for g in groups(context_for(Purpose.ALERT))}["alert"]
    assert {v.name for v in alert.variables} == {f"alert.{k}" for k in SAMPLE_ALERT}


def test_a_mistyped_member_names_its_line_a_suggestion_and_what_exists() -> None:
    [hint] = unknown("Hi\n\n{{ lead.frist_name }}")
    assert hint.line == 3 and hint.name == "lead.frist_name"
    assert "did you mean lead.first_name?" in hint.message
    assert "lead has lead.attributes, lead.email, lead.first_name, lead.last_name" in hint.message


def test_a_mistyped_top_level_name_is_named_with_a_suggestion() -> None:
    [hint] = unknown("{{ clinc.name }}")
    assert hint.line == 1 and hint.name == "clinc"
    assert "did you mean clinic?" in hint.message
    assert "templates can use alert, audience, clinic, consult, lead, links" in hint.message


def test_something_far_from_any_name_gets_no_suggestion_but_the_list() -> None:
    [hint] = unknown("{{ consult.zzzzzz }}")
    assert "did you mean" not in hint.message and "consult.when" in hint.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ lead.first_name }} {{ lead['last_name'] }} {{ clinic.name.upper() }}",
        "{% set who = lead %}{{ who.nickname is defined }}",
        "{% for x in range(2) %}{{ loop.index }}{% endfor %}",
        "{% if lead.nickname is defined %}{{ lead.nickname }}{% endif %}",
        "{{ lead.attributes.anything }} {{ alert.whatever }}",
        "{{ lead.nickname if lead.nickname is defined else lead.first_name }}",
    ],
    ids=["known", "own-name", "jinja-globals", "guarded", "mappings", "guarded-expression"],
)
def test_what_a_template_may_name_is_not_flagged(source: str) -> None:
    assert unknown(source) == []


def test_the_diff_numbers_lines_and_shows_a_replacement_as_removed_then_added() -> None:
    old = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n"
    new = "one\ntwo\nthree\n4\nfive\nsix\nseven\neight\n"
    first, second = hunks(old, new, context=1)  # far apart: two stretches
    assert first == [
        DiffLine("same", 3, 3, "three"),
        DiffLine("removed", 4, None, "four"),
        DiffLine("added", None, 4, "4"),
        DiffLine("same", 5, 5, "five"),
    ]
    assert second == [DiffLine("same", 7, 7, "seven"), DiffLine("added", None, 8, "eight")]
    assert hunks(old, old) == []
