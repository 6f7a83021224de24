"""`nurture sequences simulate`: the timeline a lead would receive, on a virtual clock.

It plans with the planner's own function, applies the gates' own timing (quiet hours, caps),
conditions and consent, and renders each message, without touching a database row or sending
anything. Marketing uses it to see a sequence before it goes live.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nurture import content
from nurture.config.policy import Policy
from nurture.config.yamlconf import load_model
from nurture.consent.ledger import ConsentState
from nurture.content import Writer
from nurture.content.rendering import RenderError, describe_local_time
from nurture.content.template_store import TemplateNotFoundError
from nurture.db.models import Channel, Lead, LeadStage, Purpose
from nurture.outbox import gates, planner, promotions
from nurture.program import windows
from nurture.program.sequences import Sequence

MAX_DEFERRALS = 20

# Sample leads get ids of their own (from their name and addresses), so that different samples
# can land in different variants of an A/B test, each one always the same.
SAMPLE_IDS = uuid.UUID("6f1c2a52-3c57-4d0e-9a55-5a6d1e0b7c11")


class ConsentChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    care: bool = True
    marketing: bool = True


class SampleLead(BaseModel):
    """A lead for the simulator, as written in a lead.yaml file (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    # A real lead's id shows the A/B variants that lead gets; by default one made from the name.
    id: uuid.UUID | None = None
    first_name: str = "Sam"
    last_name: str = "Sample"
    email: str | None = "sam.sample@example.com"
    phone: str | None = "+12085550100"
    timezone: str | None = "America/Boise"
    postal_code: str | None = None
    state: str | None = None
    stage: LeadStage = LeadStage.SIGNED_UP
    attributes: dict[str, Any] = Field(default_factory=dict)
    consult_confirmed: bool = False
    consent: dict[Channel, ConsentChoice] = Field(
        default_factory=lambda: {Channel.EMAIL: ConsentChoice(), Channel.SMS: ConsentChoice()}
    )

    def consent_state(self) -> ConsentState:
        granted = set()
        for channel, choice in self.consent.items():
            if choice.care:
                granted.add((channel, Purpose.CARE))
            if choice.marketing:
                granted.add((channel, Purpose.MARKETING))
        return ConsentState(frozenset(granted))

    def lead_id(self) -> uuid.UUID:
        if self.id is not None:
            return self.id
        who = f"{self.first_name} {self.last_name} {self.email or ''} {self.phone or ''}"
        return uuid.uuid5(SAMPLE_IDS, who)

    def to_lead(self, *, consult_at: datetime | None, now: datetime) -> Lead:
        """A transient lead: never added to a session, never stored."""
        return Lead(
            id=self.lead_id(),
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            phone=self.phone,
            timezone=self.timezone,
            postal_code=self.postal_code,
            state=self.state,
            stage=self.stage,
            attributes=self.attributes,
            consult_at=consult_at,
            consult_version=1 if consult_at else 0,
            consult_confirmed_at=now if self.consult_confirmed else None,
            marketing_paused_at=None,
            sms_unreachable_at=None,
        )


def load_sample_lead(path: Path | None) -> SampleLead:
    return load_model(path, SampleLead) if path is not None else SampleLead()


@dataclass(frozen=True)
class Entry:
    step_key: str
    channel: Channel
    purpose: Purpose
    planned_at: datetime | None  # what the planner wrote (None: anchor unknown)
    send_at: datetime | None  # after quiet hours and caps (None: not sent)
    local: str | None  # send_at in the lead's own time
    headline: str | None  # the e-mail subject or the text's first line
    skipped: str | None  # why it would not be sent
    template: str  # the template the planner would choose for this lead
    variant: str | None  # the step's A/B variant this lead gets (None: the step has no test)


def simulate(
    sequence: Sequence,
    sample: SampleLead,
    *,
    start: datetime,
    consult_at: datetime | None,
    writer: Writer,
    policy: Policy,
    promoted: Mapping[str, promotions.Promotion] | None = None,
) -> list[Entry]:
    """``promoted``: the sequence's promoted A/B winners, which every lead now gets."""
    clinic_zone = writer.clinic.zone
    lead = sample.to_lead(consult_at=consult_at, now=start)
    zones = windows.zones_of(lead, clinic_zone).zones
    consent = sample.consent_state()
    sent: dict[tuple[Channel, Purpose], list[datetime]] = {}
    entries = []
    planned = [
        (step, planner.plan_row(lead, step, enrolled_at=start, clinic_zone=clinic_zone, now=start))
        for step in sequence.steps
    ]
    far = datetime.max.replace(tzinfo=start.tzinfo)
    for step, plan in sorted(planned, key=lambda item: item[1].due_at if item[1] else far):

        def entry(
            send_at: datetime | None = None,
            headline: str | None = None,
            skipped: str | None = None,
            *,
            step: Any = step,
            plan: Any = plan,
        ) -> Entry:
            local = describe_local_time(send_at, zones[0]) if send_at else None
            template, variant = planner.template_for(lead, sequence.key, step, promoted)
            return Entry(
                step.key,
                step.channel,
                step.purpose,
                plan.due_at if plan else None,
                send_at,
                local,
                headline,
                skipped,
                template,
                variant,
            )

        if plan is None:
            entries.append(entry(skipped="not planned: waits for a consult time (--consult-at)"))
            continue
        if plan.skipped_reason:
            entries.append(entry(skipped=plan.skipped_reason))
            continue
        if not consent.allows(step.channel, step.purpose):
            entries.append(entry(skipped=f"no {step.channel.value} {step.purpose.value} consent"))
            continue
        rule = gates.step_verdict(step, lead, clinic_zone)
        if rule is not None:
            entries.append(entry(skipped=rule.reason))
            continue
        send_at, skipped = _timing(
            policy,
            lead,
            step.channel,
            step.purpose,
            plan.due_at,
            plan.not_after,
            sent.setdefault((step.channel, step.purpose), []),
            zones,
        )
        if send_at is None:
            entries.append(entry(skipped=skipped))
            continue
        sent[(step.channel, step.purpose)].append(send_at)
        template, _ = planner.template_for(lead, sequence.key, step, promoted)
        entries.append(
            entry(send_at, *_headline(writer, lead, step.channel, step.purpose, template))
        )
    return sorted(entries, key=lambda e: e.send_at or e.planned_at or far)


def _timing(
    policy: Policy,
    lead: Lead,
    channel: Channel,
    purpose: Purpose,
    due_at: datetime,
    not_after: datetime | None,
    recent: list[datetime],
    zones: tuple[Any, ...],
) -> tuple[datetime | None, str | None]:
    schedule = gates.schedule_for_lead(policy, lead, channel, purpose)
    now = due_at
    for _ in range(MAX_DEFERRALS):
        verdict = gates.timing(
            now, schedule=schedule, zones=zones, recent_sends=recent, not_after=not_after
        )
        if isinstance(verdict, gates.Proceed):
            return now, None
        if isinstance(verdict, gates.Skip):
            return None, verdict.reason
        now = verdict.until
    return None, "kept moving: no allowed time found"


def _headline(
    writer: Writer, lead: Lead, channel: Channel, purpose: Purpose, template: str
) -> tuple[str | None, str | None]:
    # A made-up lead: its links are signed with a throwaway key, never the clinic's.
    context = content.context_for(
        lead,
        clinic=writer.clinic,
        public_url=writer.public_url,
        secret=b"simulation",
        purpose=purpose,
    )
    try:
        rendered = writer.render(channel, template, context)
    except (RenderError, TemplateNotFoundError) as error:
        return None, f"would fail: {error}"
    if rendered.subject is not None:
        return rendered.subject, None
    first = rendered.text.splitlines()[0] if rendered.text else ""
    return (first[:77] + "...") if len(first) > 80 else first, None


def format_timeline(
    sequence: Sequence,
    sample: SampleLead,
    entries: list[Entry],
    *,
    start: datetime,
    consult_at: datetime | None,
) -> str:
    lines = [
        f"{sequence.key} (version {sequence.version}): {sequence.name}",
        f"lead: {sample.first_name} {sample.last_name}, zone {sample.timezone or 'unknown'}, "
        f"stage {sample.stage.value}; start {start.isoformat()}; "
        f"consult {consult_at.isoformat() if consult_at else 'none'}",
        "",
        f"{'UTC':<17} {'lead time':<29} {'channel':<7} {'purpose':<9} {'step':<28} what",
    ]
    for e in entries:
        when = f"{e.send_at:%Y-%m-%d %H:%M}" if e.send_at else "-"
        what = e.headline if e.skipped is None else f"skipped: {e.skipped}"
        kind = f"{e.channel.value:<7} {e.purpose.value:<9}"
        step = e.step_key if e.variant is None else f"{e.step_key} [{e.variant}: {e.template}]"
        lines.append(f"{when:<17} {e.local or '-':<29} {kind} {step:<28} {what}")
    return "\n".join(lines) + "\n"
