"""Staff correct a lead's details from the lead page: name, time zone, ZIP code and stage.

What staff type is checked as intake checks a sign-up (the same name rules, the same ZIP
pattern, an IANA zone zoneinfo knows); every problem is named by its field and nothing is saved
while any remains. Every change is audited once ("lead.edited") with each field's before and
after.

Zones: the lead's zone is never stored as an offset or applied to stored times (those stay UTC);
it is read again wherever a local time is needed, and the gates read it when a message is due.
A step sent at a local hour ("day 1 at 10:00") was planned as an instant in the old zone: a
change of zone moves each such row still waiting to that hour in the new one
(``planner.retime_local_steps``), and the audit entry says how many moved.
A zone typed here is "set on purpose" and wins over everything else. Left blank, the zone is
derived, as at intake, from the ZIP code (else the phone's area code, else the clinic's), so
editing the ZIP code re-derives the zone whenever no zone was set on purpose. The state that
state rules come from is derived from the ZIP code too, and is re-derived with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Lead, LeadStage
from nurture.leads.intake import NAME_REFUSED, ZIP_CODE
from nurture.leads.lifecycle import lock_lead
from nurture.outbox import planner
from nurture.program import windows
from nurture.program.sequences import Catalog

MAX_NAME = 100
EDITABLE = ("first_name", "last_name", "timezone", "postal_code", "stage")


class EditError(ValueError):
    """The form cannot be saved; ``problems`` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class LeadEdit:
    first_name: str
    last_name: str
    timezone: str | None  # None: derive it (ZIP code, area code, clinic)
    postal_code: str | None
    stage: LeadStage


def form_values(lead: Lead) -> dict[str, str]:
    """The edit form filled in with what is stored now."""
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "timezone": lead.timezone or "",
        "postal_code": lead.postal_code or "",
        "stage": lead.stage.value,
    }


def _name(value: str, field: str, problems: dict[str, str]) -> str:
    cleaned = " ".join(value.split())
    if any(not char.isprintable() for char in cleaned):
        problems[field] = "must not contain invisible or control characters"
    elif NAME_REFUSED.search(cleaned):
        problems[field] = "just the name, without links, code or the characters < > [ ] { } \\ | `"
    elif len(cleaned) > MAX_NAME:
        problems[field] = f"keep it to {MAX_NAME} characters"
    return cleaned


def parse_edit(entered: dict[str, str]) -> LeadEdit:
    """The form as a :class:`LeadEdit`; raises :class:`EditError` naming every bad field."""
    problems: dict[str, str] = {}
    first_name = _name(entered.get("first_name", ""), "first_name", problems)
    last_name = _name(entered.get("last_name", ""), "last_name", problems)
    zone = entered.get("timezone", "").strip() or None
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems["timezone"] = (
                f"unknown time zone {zone!r}; use an IANA name such as America/New_York,"
                " or leave it blank to go by the ZIP code"
            )
    postal_code = entered.get("postal_code", "").strip() or None
    if postal_code is not None and not ZIP_CODE.match(postal_code):
        problems["postal_code"] = "not a US ZIP code; write 5 digits, e.g. 83402"
    try:
        stage = LeadStage(entered.get("stage", "").strip())
    except ValueError:
        problems["stage"] = f"choose one of {', '.join(stage.value for stage in LeadStage)}"
        stage = LeadStage.SIGNED_UP
    if problems:
        raise EditError(problems)
    return LeadEdit(first_name, last_name, zone, postal_code, stage)


def _stored(lead: Lead, field: str) -> Any:
    value = getattr(lead, field)
    return value.value if isinstance(value, LeadStage) else value


def apply_edit(
    session: Session,
    lead: Lead,
    edit: LeadEdit,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    actor: str,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Save what changed, on the locked lead, with one audit entry; the changes by field
    (``{"before": …, "after": …}``), empty (and nothing written) when nothing changed.

    Besides the fields typed, the entry records the state and the zone the lead's times are
    shown and their texts timed in, when those follow from the change, and how many planned
    messages sent at a local hour moved to that hour in the new zone."""
    lock_lead(session, lead)
    zone_before = windows.zones_of(lead, clinic_zone).shown
    changes: dict[str, dict[str, Any]] = {}
    wanted: dict[str, Any] = {
        "first_name": edit.first_name,
        "last_name": edit.last_name,
        "timezone": edit.timezone,
        "postal_code": edit.postal_code,
    }
    if edit.postal_code != lead.postal_code:
        # Intake derives the state from the ZIP code; a new ZIP code brings its own (none
        # for a ZIP code the directory does not know, rather than the old one's).
        wanted["state"] = windows.state_for_postal_code(edit.postal_code)
    for field, value in wanted.items():
        before = getattr(lead, field)
        if before != value:
            changes[field] = {"before": before, "after": value}
            setattr(lead, field, value)
    if lead.stage is not edit.stage:
        changes["stage"] = {"before": lead.stage.value, "after": edit.stage.value}
        lead.stage = edit.stage
    if not changes:
        return changes
    zone_after = windows.zones_of(lead, clinic_zone).shown
    if zone_after.key != zone_before.key:
        retimed = planner.retime_local_steps(
            session, lead, zone_before, catalog=catalog, clinic_zone=clinic_zone, now=now
        )
        changes["zone"] = {
            "before": zone_before.key,
            "after": zone_after.key,
            "messages_retimed": retimed,
        }
    lead.updated_at = now
    audit.record(session, actor=actor, action="lead.edited", lead_id=lead.id, details=changes)
    return changes
