"""Sample data for previews, lint and simulations: what a template may rely on being there.

Lint renders every template for each sample lead, so a template that only works when a lead
has a name, or a booked consult, fails before it reaches a real person.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from nurture.models import Lead, LeadStage

SAMPLE_ALERT: dict[str, Any] = {
    "lead_name": "Sam Sample",
    "phone": "+12085550100",
    "body": "Sample reply text",
    "received": "Tue, Mar 3 at 2:30 PM MST",
    "lead_url": "https://nurture.example.org/admin/leads/00000000-0000-0000-0000-000000000000",
    "reason": "a reply that needs a person",
    "code": 30007,
    "step": "booking-nudge",
}


def sample_leads() -> dict[str, Lead]:
    """Transient leads (never stored), by a label shown in the studio's sample picker."""
    booked = datetime(2026, 3, 11, 16, 30, tzinfo=UTC)
    return {
        "Booked lead with every field": Lead(
            id=uuid.UUID(int=1),
            first_name="Maximiliana",
            last_name="Montgomery-Smith",
            email="maximiliana@example.com",
            phone="+12085550100",
            timezone="America/Boise",
            postal_code="83402",
            state="ID",
            stage=LeadStage.BOOKED,
            consult_at=booked,
            consult_version=1,
            consult_confirmed_at=None,
            attributes={},
        ),
        "New lead, no consult yet": Lead(
            id=uuid.UUID(int=2),
            first_name="Sam",
            last_name="",
            email="sam@example.com",
            phone="+12085550101",
            timezone=None,
            postal_code=None,
            state=None,
            stage=LeadStage.SIGNED_UP,
            consult_at=None,
            consult_version=0,
            consult_confirmed_at=None,
            attributes={},
        ),
        "Someone who only texted us (no name, no e-mail)": Lead(
            id=uuid.UUID(int=3),
            first_name="",
            last_name="",
            email=None,
            phone="+12085550102",
            timezone=None,
            postal_code=None,
            state=None,
            stage=LeadStage.SIGNED_UP,
            consult_at=None,
            consult_version=0,
            consult_confirmed_at=None,
            attributes={},
        ),
    }
