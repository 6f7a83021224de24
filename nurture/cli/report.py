"""`nurture report funnel`: the funnel's numbers, exactly as /admin/funnel shows them (the same
:func:`nurture.funnel.report.build`)."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import click

from nurture.cli.base import UsageProblem, cli, services_or_exit, settings_or_exit


@cli.group()
def report() -> None:
    """Reports on what the program achieves."""


@report.command("funnel")
@click.option(
    "--since", default=None, metavar="DATE", help="from this day on (YYYY-MM-DD, clinic time)"
)
@click.option("--sequence", default=None, metavar="KEY", help="one sequence only")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the page's numbers)")
def report_funnel(since: str | None, sequence: str | None, as_json: bool) -> None:
    """Reached, booked (last touch), time to book, clicks, opt-outs and failures per sequence,
    version, step, template version, channel, variant and sign-up source; cohorts by week."""
    from nurture.funnel import report as funnel_report
    from nurture.funnel.filters import FilterError, parse_filters, parse_since

    try:
        parse_since(since, ZoneInfo("UTC"))  # a bad date says so before any setup
    except FilterError as error:
        raise UsageProblem(f"--{error}") from None
    services = services_or_exit(settings_or_exit())
    try:
        try:
            filters = parse_filters(
                since, sequence, zone=services.clinic.zone, sequences=services.catalog.by_key
            )
        except FilterError as error:
            raise UsageProblem(f"--{error}") from None
        built = funnel_report.build(
            services.read_sessions,
            filters,
            attribution=services.policy.attribution,
            zone=services.clinic.zone,
        )
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(built.as_dict(), indent=2))
        return
    for name in funnel_report.table_names():
        title = funnel_report.TABLE_TITLES[name]
        click.echo(f"{title}\n\n{funnel_report.text_table(built, name)}\n")
