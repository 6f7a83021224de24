"""/admin/funnel: which messages lead to booked consults (issue 15 §2), for marketing and admins.

Thin: parse the filters, build the report (:mod:`nurture.funnel.report`, one short read),
render it; one chart and one CSV per table. No lead's contact details appear anywhere: the
report holds counts only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture import clock
from nurture.funnel import cohorts, numbers, report
from nurture.funnel.filters import FilterError, Filters, parse_filters
from nurture.runtime import Services
from nurture.web import charts
from nurture.web.admin.auth import Staff, area, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/funnel")
FunnelStaff = Annotated[Staff, Depends(area("funnel"))]


def _filters(services: Services, since: str | None, sequence: str | None) -> Filters:
    return parse_filters(
        since, sequence, zone=services.clinic.zone, sequences=services.catalog.by_key
    )


def _build(services: Services, filters: Filters) -> report.Report:
    return report.build(
        services.read_sessions,
        filters,
        attribution=services.policy.attribution,
        zone=services.clinic.zone,
    )


CHARTED = 6  # rows a view's chart draws (the ones that reached most); the table has them all
# A chart's label for a row: short enough that a few sit side by side under the bars.
SHORT_LABELS: dict[str, Callable[[dict[str, Any]], str]] = {
    "sequence": lambda row: str(row["sequence"]),
    "version": lambda row: f"{row['sequence']} v{row['version']}",
    "step": lambda row: str(row["step"]),
    "template": lambda row: f"{row['template']} v{row['template_version']}",
    "channel": lambda row: str(row["channel"]),
    "variant": lambda row: f"{row['step']} {row['variant'] or '(none)'}",
    "source": lambda row: str(row["utm_source"] or "(none)"),
}


def window_text(window: timedelta) -> str:
    if window % timedelta(days=1) == timedelta():
        return f"{window.days} day{'' if window.days == 1 else 's'}"
    hours = window.total_seconds() / 3600
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


def view_chart(view: numbers.View, rows: list[dict[str, Any]]) -> charts.Chart:
    """Reached and booked for the rows of the view that reached most."""
    drawn = sorted(rows, key=lambda row: -int(row["reached"]))[:CHARTED]
    label = SHORT_LABELS[view.name]
    more = f" (the {CHARTED} that reached most)" if len(rows) > CHARTED else ""
    return charts.Chart(
        title=f"Reached and booked, {view.title.lower()}{more}",
        labels=[label(row) for row in drawn],
        series=[
            charts.Series("Reached", [row["reached"] for row in drawn]),
            charts.Series("Booked", [row["booked"] for row in drawn]),
        ],
        unit="leads",
        empty="No messages sent in this period.",
    )


def cohort_chart(shown: list[cohorts.Cohort]) -> charts.Chart:
    return charts.Chart(
        title="How far each sign-up week got",
        labels=[cohort.week for cohort in shown],
        series=[
            charts.Series(report.COLUMN_TITLES[name], [getattr(c, name) for c in shown])
            for name in cohorts.COUNTS
        ],
        unit="leads",
        empty="Nobody signed up in this period.",
    )


def _page(
    request: Request,
    services: ServicesDep,
    who: Staff,
    filters: Filters,
    entered: dict[str, str],
    error: FilterError | None = None,
) -> HTMLResponse:
    built = _build(services, filters)
    shown = built.as_dict()["views"]
    tables = []
    for view in numbers.VIEWS:
        columns, rows = report.table(built, view.name)
        tables.append(
            {
                "name": view.name,
                "title": view.title,
                "columns": columns,
                "titles": [report.COLUMN_TITLES[c] for c in columns],
                "rows": rows,
                "chart": view_chart(view, shown[view.name]),
            }
        )
    columns, rows = report.table(built, report.COHORTS)
    tables.append(
        {
            "name": report.COHORTS,
            "title": report.TABLE_TITLES[report.COHORTS],
            "columns": columns,
            "titles": [report.COLUMN_TITLES[c] for c in columns],
            "rows": rows,
            "chart": cohort_chart(built.cohorts),
        }
    )
    return render(
        request,
        who,
        "funnel.html",
        {
            "tables": tables,
            "entered": entered,
            "error": error,
            "sequences": sorted(services.catalog.by_key),
            "windows": {channel.value: window_text(w) for channel, w in built.windows.items()},
            "zone": services.clinic.zone.key,
            "cell": report.cell_text,
            "render_chart": charts.render,
        },
        status_code=422 if error else 200,
    )


@router.get("", response_class=HTMLResponse)
def funnel_page(
    request: Request,
    services: ServicesDep,
    who: FunnelStaff,
    since: str | None = None,
    sequence: str | None = None,
) -> HTMLResponse:
    entered = {"since": since or "", "sequence": sequence or ""}
    try:
        filters = _filters(services, since, sequence)
    except FilterError as error:
        # The page still shows, unfiltered, with what to fix beside the filters.
        return _page(request, services, who, Filters(), entered, error)
    return _page(request, services, who, filters, entered)


@router.post("/export")
async def export(request: Request, services: ServicesDep, who: FunnelStaff) -> Response:
    """One table as CSV: the same numbers as the page, audited."""
    form = await request.form()
    check_csrf(who, form)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    name = fields.get("table", "")
    if name not in report.table_names():
        known = ", ".join(report.table_names())
        return Response(f"table: no table {name!r}; use one of {known}\n", status_code=422)
    try:
        filters = _filters(services, fields.get("since"), fields.get("sequence"))
    except FilterError as error:
        return Response(f"{error}\n", status_code=422)
    return await run_in_threadpool(_export, services, who, name, filters)


def _export(services: Services, who: Staff, name: str, filters: Filters) -> Response:
    built = _build(services, filters)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    written = list(report.csv_rows(built, name))
    writer.writerows(written)
    with services.sessions.begin() as session:
        report.record_export(
            session, actor=who.actor, name=name, filters=filters, rows=len(written) - 1
        )
    stamp = clock.utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="funnel-{name}-{stamp}.csv"'},
    )
