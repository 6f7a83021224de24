"""`nurture leads show`'s "when and why" for a pending message comes from the gates' own timing
rule (nurture.outbox.gates.timing): the hours in the lead's zone, and a message's not_after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from nurture.config.policy import load_policy
from nurture.db.models import Channel, Lead, LeadStage, Message, MessageStatus, Purpose
from nurture.outbox.expected_send import expected_send

POLICY = load_policy(Path(__file__).resolve().parents[2] / "config")
BOISE = ZoneInfo("America/Boise")
# 03:00 in Boise (MST, UTC-7): care texts wait for 08:00, 15:00 UTC.
NIGHT = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def _lead() -> Lead:
    return Lead(
        first_name="Ana",
        postal_code="83402",
        state="ID",
        phone="+12085550123",
        stage=LeadStage.BOOKED,
        attributes={},
    )


def _text(*, not_after: datetime | None = None) -> Message:
    return Message(
        channel=Channel.SMS,
        purpose=Purpose.CARE,
        sequence_key="consult-reminders",
        step_key="reminder",
        template_key="consult-reminder-soon",
        due_at=NIGHT,
        not_after=not_after,
        status=MessageStatus.SCHEDULED,
    )


def test_a_text_due_at_night_goes_at_eight_in_the_leads_zone() -> None:
    expected = expected_send(_text(), _lead(), policy=POLICY, clinic_zone=BOISE, now=NIGHT)
    assert expected.at == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    assert expected.why.endswith("waits for the sending hours in their zone")


def test_a_text_whose_consult_comes_before_the_morning_never_goes() -> None:
    # A reminder for a 07:30 consult: by 08:00 it would be too late, so the gates skip it.
    consult = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    expected = expected_send(
        _text(not_after=consult), _lead(), policy=POLICY, clinic_zone=BOISE, now=NIGHT
    )
    assert expected.at is None
    assert "not_after" in expected.why


def test_a_text_due_in_the_day_goes_when_due() -> None:
    noon = NIGHT + timedelta(hours=9)  # 12:00 in Boise
    message = _text()
    message.due_at = noon
    expected = expected_send(message, _lead(), policy=POLICY, clinic_zone=BOISE, now=noon)
    assert expected.at == noon
    assert expected.why == "as planned (consult-reminders / reminder)"
