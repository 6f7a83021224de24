"""Sequences: every program with how many leads are in it, each one's steps on a timeline with
the send window that applies, and a simulation for a sample lead."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from nurture import clock
from nurture.config.durations import format_duration
from nurture.content.staff_time import (
    LocalTimeError,
    days_later_at,
    local_input_value,
    next_full_hour,
    parse_local_input,
    utc_text,
)
from nurture.preview import sequence_overview
from nurture.preview.simulation import simulate
from nurture.web.admin.auth import SequencesStaff
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/sequences")


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
) -> HTMLResponse:
    sequence = services.catalog.by_key.get(key)
    if sequence is None:
        raise HTTPException(404, f"no sequence {key[:64]!r}")
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
        )
    )
    steps = [
        {
            "step": step,
            "offset": format_duration(step.offset),
            "when": sequence_overview.describe_offset(step),
            "window": sequence_overview.step_window(services.policy, step),
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
            "errors": errors,
            "utc": utc_text,
        },
        status_code=422 if errors else 200,
    )
