"""When a pending message is expected to leave, by the gates' own timing rule: the lead page,
`nurture leads show` and the preview of a sequence change all say it the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from nurture.config.policy import Policy
from nurture.db.models import Lead, Message, Purpose
from nurture.outbox import gates
from nurture.program import windows


@dataclass(frozen=True)
class ExpectedSend:
    """When a pending message should leave, by its due time and the sending hours alone (the
    gates look again when it is due: consent, caps, pauses), and why then."""

    at: datetime | None
    why: str


def expected_send(
    message: Message, lead: Lead, *, policy: Policy, clinic_zone: ZoneInfo, now: datetime
) -> ExpectedSend:
    """When a pending message would go, by the gates' own timing rule (quiet hours in the
    lead's zones, ``not_after``), and why. Caps are not predicted: they depend on what else is
    sent first, and the worker counts them when it takes the row."""
    planned = message.last_error or (
        f"as planned ({message.sequence_key or 'no sequence'} / {message.step_key})"
    )
    if message.purpose is Purpose.ALERT:
        return ExpectedSend(max(message.due_at, now), planned)
    earliest = max(message.due_at, now)
    verdict = gates.timing(
        earliest,
        schedule=gates.schedule_for_lead(policy, lead, message.channel, message.purpose),
        zones=windows.zones_of(lead, clinic_zone).zones,
        recent_sends=[],
        not_after=message.not_after,
    )
    if isinstance(verdict, gates.Skip):
        return ExpectedSend(None, verdict.reason)
    if isinstance(verdict, gates.Defer):
        return ExpectedSend(verdict.until, f"{planned}; waits for the sending hours in their zone")
    return ExpectedSend(earliest, planned)
