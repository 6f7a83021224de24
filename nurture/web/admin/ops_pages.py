"""The ops console: the outbox at a glance (queues, workers, lateness, sends per minute,
failures, `unknown` rows, pauses, sequences) and the actions ops take on it: kill switches,
retries, settling `unknown` rows, reconciling with the SMS provider, purging old bodies.

Over time, the page charts sends per minute for the last hour, and sends, how late they went
and failures by error code for the last 24 h or 7 days (``?range=``): the series come from
:mod:`nurture.ops.series`, drawn by :mod:`nurture.web.charts`.

Every action is a POST with the CSRF token, runs the domain call (:mod:`nurture.ops.console`, which
audits it) in one write transaction and answers 303 with a notice; a refused action shows the
page again with the reason (422) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nurture import clock, ops
from nurture.content.staff_time import utc_text
from nurture.db.models import Channel
from nurture.ops import series
from nurture.outbox.email_feedback.rates import percent, window_text
from nurture.runtime import Services
from nurture.web import charts
from nurture.web.admin.auth import OpsStaff, Staff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/ops")

PAGE = "/admin/ops"
REFRESH_SECONDS = 15
MAX_PURGE_DAYS = 36_500  # a century; more would overflow the date arithmetic
# Column sizes that nurture.ops.console does not check itself (PostgreSQL would refuse with a 500).
MAX_REASON = 500
MAX_PROVIDER_ID = 255
SCOPES = (("all", "everything"), ("channel", "one channel"), ("sequence", "one sequence"))
OVERDUE = (("send", "Send them now"), ("skip", "Skip them (paused past due)"))
# What the count in `?count=` means after each notice (the notices themselves are in pages.py).
COUNTED = {
    "resumed-pause": "{n} overdue message(s) skipped.",
    "retried": "{n} message(s) back on the schedule, due now.",
    "settled": "{n} unknown text(s) settled with the provider: sent where it has them, "
    "scheduled again where it has no record of them.",
    "purged": "{n} message bodies deleted.",
}


# --- reading ------------------------------------------------------------------------------


def human_duration(seconds: float | None) -> str:
    """42 s, 3 min, 2 h, 5 d: rounded to the unit a person would say; "–" for nothing."""
    if seconds is None:
        return "–"
    value = max(0.0, float(seconds))
    if value < 90:
        return f"{round(value)} s"
    if value < 90 * 60:
        return f"{round(value / 60)} min"
    if value < 48 * 3600:
        return f"{round(value / 3600)} h"
    return f"{round(value / 86400)} d"


def _instant(value: datetime | str | None) -> datetime | None:
    """The status gives some instants as datetimes and some as ISO strings; read both."""
    if value is None or value == "":
        return None
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _relative(value: datetime | str | None, now: datetime) -> str:
    instant = _instant(value)
    if instant is None:
        return ""
    seconds = (now - instant).total_seconds()
    return f"{human_duration(seconds)} ago" if seconds >= 0 else f"in {human_duration(-seconds)}"


def _snapshot(services: Services, now: datetime) -> ops.Status:
    queues = services.broker.depths()
    with services.read_sessions() as session:
        return _status(services, session, queues, now)


def _status(
    services: Services, session: Session, queues: dict[str, int | None], now: datetime
) -> ops.Status:
    return ops.status(
        session,
        catalog=services.catalog,
        queues=queues,
        now=now,
        email_feedback=services.policy.email_feedback,
    )


# --- charts -------------------------------------------------------------------------------

DEFAULT_RANGE = series.LAST_DAY.key
FAILURE_CODES_DRAWN = 6  # more codes than colours a reader can tell apart go into "other"
# How many bucket labels the x axis names (every label is in the chart's tooltips).
AXIS_EVERY = {series.LAST_HOUR.key: 10, series.LAST_DAY.key: 3, series.LAST_WEEK.key: 8}
# Axis steps a person reads at a glance: 5 s, 30 s, 2 min, 1 h, 1 d …
MINUTE, HOUR, DAY = 60, 3600, 86400
DURATION_STEPS = (
    *(1, 2, 5, 10, 15, 30),
    *(m * MINUTE for m in (1, 2, 5, 10, 15, 30)),
    *(h * HOUR for h in (1, 2, 3, 6, 12)),
    *(d * DAY for d in (1, 2, 5, 7, 14, 30, 90, 365)),
)
BUCKET_WORD = {series.LAST_HOUR.key: "minute", series.LAST_DAY.key: "hour"}


@dataclass(frozen=True)
class _Reading:
    """Everything the page shows, read in one short read transaction."""

    status: ops.Status
    last_hour: series.SendSeries
    sends: series.SendSeries
    failures: series.FailureSeries


def _range(request: Request) -> series.Window:
    key = request.query_params.get("range", DEFAULT_RANGE)
    window = series.RANGES.get(key)
    if window is None:
        known = " or ".join(series.RANGES)
        raise HTTPException(400, f"range: use {known}, not {key[:20]!r}")
    return window


def _read(services: Services, now: datetime, window: series.Window) -> _Reading:
    queues = services.broker.depths()  # a network call: before the transaction opens
    zone = services.clinic.zone
    with services.read_sessions() as session:
        return _Reading(
            status=_status(services, session, queues, now),
            last_hour=series.sends(session, series.LAST_HOUR, now=now, zone=zone),
            sends=series.sends(session, window, now=now, zone=zone),
            failures=series.failures(session, window, now=now, zone=zone),
        )


def _per(window: series.Window) -> str:
    return BUCKET_WORD.get(window.key, human_duration(window.bucket.total_seconds()))


def send_chart(sends: series.SendSeries) -> charts.Chart:
    window = sends.buckets.window
    return charts.Chart(
        title=f"Sends per {_per(window)}, {window.text}",
        labels=sends.buckets.labels,
        series=[charts.Series("Sends", sends.sends)],
        unit="sends",
        empty=f"No sends in {window.text}.",
        axis_every=AXIS_EVERY[window.key],
        css_class="chart-sends",
    )


def lateness_chart(sends: series.SendSeries) -> charts.Chart:
    window = sends.buckets.window
    return charts.Chart(
        title=f"How late sends went (after their due time), per {_per(window)}, {window.text}",
        labels=sends.buckets.labels,
        series=[charts.Series("p50", sends.late_p50), charts.Series("p95", sends.late_p95)],
        kind="line",
        # Sends that all went on time are worth a line at zero, not "nothing to show".
        empty=f"No sends in {window.text}, so no lateness to show.",
        axis_every=AXIS_EVERY[window.key],
        format_value=human_duration,
        steps=DURATION_STEPS,
        summable=False,
        css_class="chart-lateness",
    )


def failure_chart(failures: series.FailureSeries) -> charts.Chart:
    window = failures.buckets.window
    codes = list(failures.by_code.items())
    drawn = [charts.Series(code, counts) for code, counts in codes[:FAILURE_CODES_DRAWN]]
    if rest := codes[FAILURE_CODES_DRAWN:]:
        other = [sum(counts[i] for _, counts in rest) for i in range(len(failures.buckets.starts))]
        drawn.append(charts.Series(f"{len(rest)} other codes", other))
    return charts.Chart(
        title=f"Failures by error code, per {_per(window)}, {window.text}",
        labels=failures.buckets.labels,
        series=drawn or [charts.Series("Failures", [0] * len(failures.buckets.starts))],
        kind="stacked",
        unit="failures",
        legend=bool(codes),  # which code failed matters even when there is only one
        empty=f"No failures in {window.text}.",
        axis_every=AXIS_EVERY[window.key],
        css_class="chart-failures",
    )


def _count_text(request: Request) -> str:
    template = COUNTED.get(request.query_params.get("notice", ""))
    count = request.query_params.get("count", "")
    if template is None or not count.isdecimal():
        return ""
    return template.format(n=int(count))


def _ops_page(
    request: Request,
    services: Services,
    who: Staff,
    *,
    errors: list[str] | None = None,
    entered: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = clock.utcnow()
    window = _range(request)
    reading = _read(services, now, window)
    snapshot = reading.status

    def when(value: datetime | str | None) -> str:
        return utc_text(_instant(value))

    def relative(value: datetime | str | None) -> str:
        return _relative(value, now)

    return render(
        request,
        who,
        "ops.html",
        {
            "s": snapshot,
            "minute_chart": send_chart(reading.last_hour),
            "render_chart": charts.render,
            "sent_last_hour": sum(reading.last_hour.sends),
            "range": window,
            "zone": services.clinic.zone.key,
            "ranges": series.RANGES.values(),
            "range_charts": [
                ("sends", send_chart(reading.sends)),
                ("lateness", lateness_chart(reading.sends)),
                ("failures", failure_chart(reading.failures)),
            ],
            "sent_in_range": sum(reading.sends.sends),
            "failed_in_range": reading.failures.total,
            "duration": human_duration,
            "when": when,
            "relative": relative,
            "channels": [channel.value for channel in Channel],
            "sequence_keys": sorted(services.catalog.by_key),
            "scopes": SCOPES,
            "overdue_choices": OVERDUE,
            "retention_days": services.settings.body_retention_days,
            "max_purge_days": MAX_PURGE_DAYS,
            "max_reason": MAX_REASON,
            "max_provider_id": MAX_PROVIDER_ID,
            "alive_within": human_duration(ops.ALIVE_WITHIN.total_seconds()),
            "refresh_seconds": REFRESH_SECONDS,
            "feedback_policy": services.policy.email_feedback,
            "percent": percent,
            "window_text": window_text,
            "count_text": "" if errors else _count_text(request),
            "errors": errors or [],
            "entered": {
                "pause_form": "",
                "scope": "",
                "channel": "",
                "sequence": "",
                "reason": "",
                "message_id": "",
                "provider_id": "",
                "retry_id": "",
                "days": str(services.settings.body_retention_days),
                **(entered or {}),
            },
        },
        status_code=status,
    )


@router.get("", response_class=HTMLResponse)
def page(request: Request, services: ServicesDep, who: OpsStaff) -> HTMLResponse:
    return _ops_page(request, services, who)


@router.get("/status.json")
def status_json(services: ServicesDep, who: OpsStaff) -> JSONResponse:
    """What the page shows, for scripts and the page's own refresh (datetimes as ISO 8601)."""
    snapshot = _snapshot(services, clock.utcnow())
    return JSONResponse(jsonable_encoder(snapshot.as_dict()), headers={"Cache-Control": "no-store"})


# --- doing --------------------------------------------------------------------------------

Action = Callable[[Session, datetime], int | None]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _whole_number(form: FormData, name: str) -> int:
    """A positive whole number that fits the database's 64-bit ids."""
    text = _field(form, name)
    if not text:
        raise ops.OpsError(f"{name}: give a number")
    try:
        number = int(text)
    except ValueError:
        raise ops.OpsError(f"{name}: {text[:40]!r} is not a whole number") from None
    if not 0 < number < 2**63:
        raise ops.OpsError(f"{name}: {text[:40]} is out of range")
    return number


async def _act(
    request: Request,
    services: Services,
    who: Staff,
    action: Action,
    *,
    notice: str,
    entered: dict[str, str],
) -> Response:
    """Run ``action`` in one write transaction: 303 with ``notice`` when it is done, the page
    again with the reason (422) when it is refused. A refusal rolls back everything it did."""

    def in_transaction() -> int | None:
        with services.sessions.begin() as session:
            return action(session, clock.utcnow())

    try:
        count = await run_in_threadpool(in_transaction)
    except ops.OpsError as error:
        return await run_in_threadpool(
            _refused, request, services, who, [f"Not done: {error}"], entered
        )
    suffix = "" if count is None else f"&count={count}"
    return RedirectResponse(f"{PAGE}?notice={notice}{suffix}", 303)


def _refused(
    request: Request, services: Services, who: Staff, errors: list[str], entered: dict[str, str]
) -> HTMLResponse:
    return _ops_page(request, services, who, errors=errors, entered=entered, status=422)


@router.post("/pause")
async def start_pause(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    entered = {
        "pause_form": _field(form, "pause_form"),
        "scope": _field(form, "scope"),
        "channel": _field(form, "channel"),
        "sequence": _field(form, "sequence"),
        "reason": _field(form, "reason"),
    }
    scope = entered["scope"]
    value = {"channel": entered["channel"], "sequence": entered["sequence"]}.get(scope)

    def act(session: Session, now: datetime) -> None:
        if len(entered["reason"]) > MAX_REASON:
            raise ops.OpsError(f"reason: at most {MAX_REASON} characters, please")
        ops.start_pause(
            session,
            scope,
            value,
            reason=entered["reason"],
            actor=who.actor,
            now=now,
            catalog=services.catalog,
        )

    return await _act(request, services, who, act, notice="paused", entered=entered)


@router.post("/resume")
async def end_pause(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    choice = _field(form, "overdue")

    def act(session: Session, now: datetime) -> int | None:
        pause_id = _whole_number(form, "pause_id")
        overdue: Literal["send", "skip"]
        if choice == "send":
            overdue = "send"
        elif choice == "skip":
            overdue = "skip"
        else:
            raise ops.OpsError(
                "overdue: choose what happens to the messages that fell due while paused "
                "(send them now, or skip them)"
            )
        skipped = ops.end_pause(session, pause_id, overdue=overdue, actor=who.actor, now=now)
        return skipped if overdue == "skip" else None

    return await _act(request, services, who, act, notice="resumed-pause", entered={})


@router.post("/retry")
async def retry(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    code = _field(form, "error_code")
    entered = {"retry_id": _field(form, "message_id")}

    def act(session: Session, now: datetime) -> int:
        if entered["retry_id"] or not code:
            message_id = _whole_number(form, "message_id")
            count = ops.retry_failed(session, ids=[message_id], actor=who.actor, now=now)
            if not count:
                raise ops.OpsError(f"message_id: message {message_id} is not failed or undelivered")
            return count
        count = ops.retry_failed(session, error_code=code, actor=who.actor, now=now)
        if not count:
            raise ops.OpsError(f"error_code: no failed messages with the code {code[:40]!r}")
        return count

    return await _act(request, services, who, act, notice="retried", entered=entered)


@router.post("/settle")
async def settle_sent(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    entered = {"message_id": _field(form, "message_id"), "provider_id": _field(form, "provider_id")}

    def act(session: Session, now: datetime) -> None:
        if len(entered["provider_id"]) > MAX_PROVIDER_ID:
            raise ops.OpsError(f"provider_id: at most {MAX_PROVIDER_ID} characters")
        ops.settle_unknown(
            session,
            _whole_number(form, "message_id"),
            sent=True,
            provider_id=entered["provider_id"] or None,
            actor=who.actor,
            now=now,
        )

    return await _act(request, services, who, act, notice="settled", entered=entered)


@router.post("/resend")
async def resend(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    confirmed = _field(form, "confirm") == "yes"

    def act(session: Session, now: datetime) -> None:
        ops.settle_unknown(
            session,
            _whole_number(form, "message_id"),
            sent=False,
            provider_id=None,
            actor=who.actor,
            now=now,
            confirm_duplicate=confirmed,
        )

    return await _act(request, services, who, act, notice="retried", entered={})


@router.post("/reconcile")
async def reconcile(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    check_csrf(who, await request.form())

    def act(session: Session, now: datetime) -> int:
        return ops.reconcile_unknown(session, services.sms, now=now)

    return await _act(request, services, who, act, notice="settled", entered={})


@router.post("/purge")
async def purge(request: Request, services: ServicesDep, who: OpsStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    entered = {"days": _field(form, "days")}
    confirmed = _field(form, "confirm") == "yes"

    def act(session: Session, now: datetime) -> int:
        days = _whole_number(form, "days")
        if not 1 <= days <= MAX_PURGE_DAYS:
            raise ops.OpsError(f"days: give a number of days from 1 to {MAX_PURGE_DAYS}")
        if not confirmed:
            raise ops.OpsError(
                "confirm: tick the box to confirm; deleted message text cannot be brought back"
            )
        return ops.purge_bodies(session, older_than=timedelta(days=days), actor=who.actor, now=now)

    return await _act(request, services, who, act, notice="purged", entered=entered)
