"""What a provider's error code does beyond failing one message (one table for the sender and
the status webhook): an opt-out held by the carrier revokes consent, an unreachable number is
not texted again, a filtered or unregistered sender halts all texting and alerts staff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.db import audit
from nurture.db.models import Channel, ConsentSource, Lead, Message, PauseScope, Purpose
from nurture.outbox import alerts, pauses, withdrawals
from nurture.transports.twilio_errors import ErrorClass, classify

REASONS = {30007: "the carrier filtered a message", 30034: "the sender is not registered (10DLC)"}


def apply_sms_error(
    session: Session,
    message: Message,
    code: int | None,
    *,
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
) -> ErrorClass:
    kind = classify(code)
    lead = session.get_one(Lead, message.lead_id)
    evidence = {"error_code": code, "message_id": message.id, "provider_id": message.provider_id}
    if kind is ErrorClass.OPTED_OUT:
        withdrawals.revoke_sms(
            session,
            lead.id,
            source=ConsentSource.PROVIDER_OPT_OUT,
            evidence=evidence,
            actor=actor,
            now=now,
        )
    elif kind is ErrorClass.UNREACHABLE:
        if lead.sms_unreachable_at is None:
            lead.sms_unreachable_at = now
        withdrawals.cancel_pending(
            session,
            lead.id,
            channel=Channel.SMS,
            purposes=(Purpose.CARE, Purpose.MARKETING, Purpose.OPTIN),
            reason=f"the number cannot receive texts (error {code})",
            now=now,
        )
        audit.record(
            session, actor=actor, action="lead.sms_unreachable", lead_id=lead.id, details=evidence
        )
    elif kind is ErrorClass.HALT:
        reason = REASONS.get(code or 0, f"provider error {code}")
        pauses.pause(
            session,
            PauseScope.CHANNEL,
            Channel.SMS.value,
            reason=f"Twilio {code}: {reason}",
            actor=actor,
            now=now,
        )
        alerts.alert_staff(
            session,
            lead,
            template="staff-halt-alert",
            details={"code": code, "reason": reason, "step": message.step_key},
            clinic=clinic,
            public_url=public_url,
            now=now,
            actor=actor,
        )
    return kind
