"""The funnel page, its CSV export and `nurture report funnel --json` on the seeded data set whose
numbers are worked out by hand (tests/support/funnel_seed.py): all three give exactly those."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from nurture.cli import cli
from nurture.config.settings import get_settings
from nurture.db.models import AuditEvent
from nurture.funnel import numbers, report
from nurture.runtime import Services
from nurture.web import create_app
from tests.db.test_admin_pages import program, sign_in
from tests.support import funnel_seed

__all__ = ["program"]


@pytest.fixture
def seeded(program: Services) -> Services:
    with program.sessions.begin() as session:
        funnel_seed.insert(session)
    return program


def page_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Each table of the page as rows of {column: cell text}."""
    tables = {}
    for name, body in re.findall(
        r'<section id="([a-z]+)" class="funnel-view".*?<tbody>(.*?)</tbody>', text, re.DOTALL
    ):
        tables[name] = [
            {
                col: html.unescape(value)
                for col, value in re.findall(r'<td data-column="([a-z_]+)">(.*?)</td>', row)
            }
            for row in re.findall(r"<tr data-row=\"\d+\">(.*?)</tr>", body, re.DOTALL)
        ]
    return tables


def as_cells(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: report.cell_text(v) for k, v in row.items()} for row in rows]


def run_cli(services: Services, args: list[str]) -> tuple[int, str]:
    settings = services.settings
    env = {
        "NURTURE_DATABASE_URL": settings.resolved_database_url,
        "NURTURE_CONFIG_DIR": str(settings.config_dir),
        "NURTURE_TEMPLATES_DIR": str(settings.templates_dir),
        "NURTURE_VAR_DIR": str(settings.var_dir),
    }
    get_settings.cache_clear()  # the command reads these settings, not an earlier test's
    try:
        result = CliRunner().invoke(cli, args, env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


def test_page_and_cli_json_show_the_hand_worked_numbers(seeded: Services) -> None:
    marketing = sign_in(create_app(seeded), seeded, "marketing")
    page = marketing.get("/admin/funnel")
    assert page.status_code == 200, page.text
    tables = page_tables(page.text)
    for view in numbers.VIEWS:
        assert tables[view.name] == as_cells(funnel_seed.expected_dicts(view)), view.name
    expected_cohorts = funnel_seed.cohort_dicts(funnel_seed.EXPECTED_COHORTS)
    assert tables["cohorts"] == as_cells(expected_cohorts)
    # One chart per table, drawn on the server.
    assert page.text.count('<figure class="ops-chart"') == len(numbers.VIEWS) + 1
    assert page.text.count("<svg") == len(numbers.VIEWS) + 1
    # Counts only: no seeded lead's name or address reaches marketing.
    assert "funnel.example" not in page.text and "Seed L" not in page.text

    code, output = run_cli(seeded, ["report", "funnel", "--json"])
    assert code == 0, output
    shown = json.loads(output)
    for view in numbers.VIEWS:
        assert shown["views"][view.name] == funnel_seed.expected_dicts(view), view.name
    assert shown["cohorts"] == expected_cohorts
    assert shown["windows_hours"] == {"email": 120.0, "sms": 24.0}


def test_since_and_sequence_filter_page_and_cli_alike(seeded: Services) -> None:
    marketing = sign_in(create_app(seeded), seeded, "marketing")
    page = marketing.get("/admin/funnel", params={"since": "2026-03-02"})
    assert page.status_code == 200
    channel = next(view for view in numbers.VIEWS if view.name == "channel")
    expected = [
        {
            **dict(zip(channel.columns, key, strict=True)),
            **dict(zip(numbers.NUMBERS, values, strict=True)),
        }
        for key, values in funnel_seed.EXPECTED_SINCE_CHANNEL
    ]
    assert page_tables(page.text)["channel"] == as_cells(expected)
    code, output = run_cli(seeded, ["report", "funnel", "--json", "--since", "2026-03-02"])
    assert code == 0, output
    assert json.loads(output)["views"]["channel"] == expected
    assert json.loads(output)["cohorts"] == funnel_seed.cohort_dicts(
        funnel_seed.EXPECTED_SINCE_COHORTS
    )

    only = marketing.get("/admin/funnel", params={"sequence": funnel_seed.REMINDERS})
    assert page_tables(only.text)["sequence"] == as_cells(
        [
            {
                "sequence": funnel_seed.REMINDERS,
                **dict(zip(numbers.NUMBERS, funnel_seed.EXPECTED["sequence"][1][1], strict=True)),
            }
        ]
    )
    code, output = run_cli(
        seeded, ["report", "funnel", "--json", "--sequence", funnel_seed.REMINDERS]
    )
    assert code == 0, output
    assert [row["sequence"] for row in json.loads(output)["views"]["sequence"]] == [
        funnel_seed.REMINDERS
    ]


def test_bad_filters_say_what_to_fix(seeded: Services) -> None:
    marketing = sign_in(create_app(seeded), seeded, "marketing")
    page = marketing.get("/admin/funnel", params={"since": "last week"})
    assert page.status_code == 422
    assert "since: &#39;last week&#39; is not a date; write YYYY-MM-DD" in page.text
    page = marketing.get("/admin/funnel", params={"sequence": "<b>nope</b>"})
    assert page.status_code == 422
    assert "no sequence &#39;&lt;b&gt;nope&lt;/b&gt;&#39;" in page.text  # data, never markup

    code, output = run_cli(seeded, ["report", "funnel", "--since", "2026-02-30"])
    assert code == 2
    assert "--since: '2026-02-30' is not a date; write YYYY-MM-DD" in output
    assert "Traceback" not in output
    code, output = run_cli(seeded, ["report", "funnel", "--sequence", "nope"])
    assert code == 2 and "--sequence: no sequence 'nope'; use one of consult-nurture" in output


def test_the_cli_table_shows_the_same_numbers(seeded: Services) -> None:
    code, output = run_cli(seeded, ["report", "funnel"])
    assert code == 0, output
    assert "By channel\n\nChannel  Reached  Booked  Booked %" in output
    lines = output.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("By channel")))
    email = lines[at + 4].split()
    assert email == ["email", "5", "1", "20.0", "119.5", "1", "1", "20.0", "5", "0", "0.0"]
    assert "2026-W09      2026-02-23   3          2       1          1        1" in output


def test_csv_export_is_the_page_s_table_and_is_audited(seeded: Services) -> None:
    marketing = sign_in(create_app(seeded), seeded, "marketing")
    token = marketing.csrf("/admin/funnel")
    form = {"table": "source", "since": "", "sequence": ""}
    assert marketing.post("/admin/funnel/export", form).status_code == 403  # no CSRF token
    response = marketing.post("/admin/funnel/export", form, csrf=token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        report.COLUMN_TITLES[c] for c in ("utm_source", "utm_campaign", *numbers.NUMBERS)
    ]
    assert rows[1:] == [
        [*key, *("" if v is None else str(v) for v in values)]
        for key, values in funnel_seed.EXPECTED["source"]
    ]
    with seeded.sessions() as session:
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "funnel.exported"))
    assert audit.actor == marketing.actor
    assert audit.details == {"table": "source", "since": "", "sequence": "", "rows": 2}
    bad = marketing.post("/admin/funnel/export", {**form, "table": "leads"}, csrf=token)
    assert bad.status_code == 422 and "table: no table 'leads'" in bad.text


def test_ops_may_not_open_the_funnel(seeded: Services) -> None:
    ops = sign_in(create_app(seeded), seeded, "ops")
    assert ops.get("/admin/funnel").status_code == 403
