"""Sequences: every program with how many leads are in it, each one's steps on a timeline with
the send window that applies, and a simulation for a sample lead."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nurture import clock
from nurture.config.durations import format_duration
from nurture.config.yamlconf import ConfigError
from nurture.content.staff_time import (
    LocalTimeError,
    days_later_at,
    local_input_value,
    next_full_hour,
    parse_local_input,
    utc_text,
)
from nurture.db.models import StaffRole, TemplateState
from nurture.preview import experiment_results, sequence_overview
from nurture.preview.simulation import simulate
from nurture.program import sequence_store
from nurture.program.sequences import Sequence
from nurture.runtime import Services
from nurture.web.admin.auth import SequencesStaff, Staff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/sequences")

# Ops may look at a sequence; what marketing sends is for marketing (and admins) to decide.
MAY_PROMOTE = (StaffRole.ADMIN, StaffRole.MARKETING)


def _sequence(services: Services, key: str) -> Sequence:
    sequence = services.catalog.by_key.get(key)
    if sequence is None:
        raise HTTPException(404, f"no sequence {key[:64]!r}")
    return sequence


def _may_promote(who: Staff) -> bool:
    return who.user.role in MAY_PROMOTE


@router.get("", response_class=HTMLResponse)
def list_sequences(request: Request, services: ServicesDep, who: SequencesStaff) -> HTMLResponse:
    with services.read_sessions() as session:
        rows = sequence_overview.overview(session, services.catalog)
    return render(request, who, "sequences.html", {"rows": rows})


@router.get("/{key}", response_class=HTMLResponse)
def show(
    request: Request,
    key: str,
    services: ServicesDep,
    who: SequencesStaff,
    sample: str | None = None,
    start: str | None = None,
    consult: str | None = None,
    version: int | None = None,
    published: int | None = None,
    moved: int | None = None,
) -> HTMLResponse:
    """The live version, or with ``?version=N`` any stored one (a draft's timeline and
    simulation, marked as not live)."""
    shown, stored = _shown(services, key, version)
    sequence = shown
    label, lead = sequence_overview.sample_for(sample, sequence)
    # A sample lead's zone is its own, chosen for the sample (on purpose, as a person's is).
    zone = ZoneInfo(lead.timezone) if lead.timezone else services.clinic.zone
    default_start = next_full_hour(clock.utcnow(), zone)
    errors: list[str] = []
    start_at: datetime = default_start
    consult_at: datetime | None = days_later_at(default_start, zone, days=3, hour=10)
    if start:
        try:
            start_at = parse_local_input(start, zone)
        except LocalTimeError as error:
            errors.append(f"start: {error}")
    if consult is not None:
        try:
            consult_at = parse_local_input(consult, zone) if consult.strip() else None
        except LocalTimeError as error:
            errors.append(f"consult time: {error}")
    with services.read_sessions() as session:
        experiments = experiment_results.sequence_results(session, sequence, services.policy)
    promoted = {r.step.key: r.promotion for r in experiments if r.promotion is not None}
    entries = (
        []
        if errors
        else simulate(
            sequence,
            lead,
            start=start_at,
            consult_at=consult_at,
            writer=services.writer,
            policy=services.policy,
            promoted=promoted,
        )
    )
    steps = [
        {
            "step": step,
            "offset": format_duration(step.offset),
            "when": sequence_overview.describe_offset(step),
            "window": sequence_overview.step_window(services.policy, step),
            "variants": sequence_overview.variant_rows(
                step, lead.lead_id(), sequence.key, promoted.get(step.key)
            ),
            "promoted": promoted.get(step.key),
        }
        for step in sequence.steps
    ]
    return render(
        request,
        who,
        "sequence.html",
        {
            "sequence": sequence,
            "steps": steps,
            "samples": list(sequence_overview.SAMPLES),
            "sample": label,
            "lead": lead,
            "zone": zone.key,
            "start": start if errors and start else local_input_value(start_at, zone),
            "consult": consult
            if errors and consult is not None
            else local_input_value(consult_at, zone),
            "entries": entries,
            "experiments": experiments,
            "may_promote": _may_promote(who),
            "policy_threshold": services.policy.experiments.threshold,
            "min_per_arm": services.policy.experiments.min_per_arm,
            "window_text": format_duration,
            "probability": experiment_results.format_probability,
            "errors": errors,
            "utc": utc_text,
            "shown_row": stored["shown"],
            "live_row": stored["live"],
            "newer_draft": stored["newer"],
            "may_edit": _may_promote(who),
            **({"notice": _published_notice(published, moved)} if published else {}),
        },
        status_code=422 if errors else 200,
    )


def _published_notice(published: int, moved: int | None) -> str:
    text = f"Published version {published}."
    if moved is not None:
        text += f" {moved} active enrolment{'' if moved == 1 else 's'} moved to it."
    return text


def _shown(services: Services, key: str, version: int | None) -> tuple[Sequence, dict[str, Any]]:
    """The sequence to show (the live one, or version ``version``) and the stored rows the
    page links to: the one shown, the live one, the newest draft newer than live."""
    with services.read_sessions() as session:
        history = sequence_store.versions(session, key)
    live = next((v for v in history if v.state is TemplateState.PUBLISHED), None)
    newer = next(
        (
            v
            for v in history
            if v.state is TemplateState.DRAFT and (live is None or v.version > live.version)
        ),
        None,
    )
    rows: dict[str, Any] = {"shown": None, "live": live, "newer": newer}
    if version is None:
        return _sequence(services, key), rows
    row = next((v for v in history if v.version == version), None)
    if row is None:
        raise HTTPException(404, f"sequence {key[:64]} has no version {version}")
    try:
        sequence = sequence_store.parse(row.source, key, row.version, templates=None)
    except ConfigError as error:
        reasons = "; ".join(p.reason for p in error.problems[:10])
        raise HTTPException(
            422, f"version {version} has problems, so it cannot be simulated: {reasons}"
        ) from None
    rows["shown"] = row
    return sequence, rows


@router.post("/{key}/steps/{step_key}/promote")
async def promote(
    request: Request, key: str, step_key: str, services: ServicesDep, who: SequencesStaff
) -> Response:
    """Make a step's called A/B winner the template every lead gets from the next planning on
    (audited as experiment.promoted); 409 with the reason while no winner is called."""
    form = await request.form()
    check_csrf(who, form)
    if not _may_promote(who):
        raise HTTPException(403, f"your role ({who.user.role.value}) cannot promote a variant")
    sequence = _sequence(services, key)
    step = services.catalog.step(sequence.key, step_key)
    if step is None or step.variants is None:
        raise HTTPException(404, f"{sequence.key} has no A/B-tested step {step_key[:64]!r}")
    variant = form.get("variant")
    if not isinstance(variant, str) or not variant:
        raise HTTPException(422, "the form names no variant to promote (field variant)")

    def write() -> None:
        with services.sessions.begin() as session:
            experiment_results.promote(
                session, sequence, step.key, variant, policy=services.policy, actor=who.actor
            )

    try:
        await run_in_threadpool(write)
    except experiment_results.PromotionRefusedError as error:
        raise HTTPException(409, f"not promoted: {error}") from None
    return RedirectResponse(f"/admin/sequences/{sequence.key}#experiment-{step.key}", 303)
