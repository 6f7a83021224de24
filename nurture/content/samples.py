"""Sample data for previews, lint and simulations: what a template may rely on being there.

Lint renders every template for each sample lead, and for the edge cases below, so a template
that only works when a lead has a name, or a booked consult, or that is slow or broken for one
kind of lead, fails before it reaches a real person.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from nurture.db.models import Lead, LeadStage

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


def _lead(number: int, **fields: Any) -> Lead:
    """A transient lead: a signed-up lead with a name, overridden by ``fields``."""
    values: dict[str, Any] = {
        "first_name": "Ana",
        "last_name": "Rivera",
        "email": "ana@example.com",
        "phone": "+12085550110",
        "timezone": None,
        "postal_code": None,
        "state": None,
        "stage": LeadStage.SIGNED_UP,
        "consult_at": None,
        "consult_version": 0,
        "consult_confirmed_at": None,
        "attributes": {},
    }
    return Lead(id=uuid.UUID(int=number), **(values | fields))


def edge_case_leads() -> dict[str, Lead]:
    """Leads lint also renders for, beyond the studio's samples: every stage, long and non-ASCII
    names, missing optional fields, with and without a consult."""
    booked = datetime(2026, 3, 11, 16, 30, tzinfo=UTC)
    past = datetime(2026, 2, 20, 17, 0, tzinfo=UTC)
    consult = {"consult_at": booked, "consult_version": 1}
    return {
        "A very long name": _lead(
            101,
            first_name=" ".join(["Maximiliana-Josefina-Alexandrina"] * 6),  # ~200 characters
            last_name=" ".join(["Montgomery-Smith-Vanderbilt-Worthington"] * 5),
        ),
        "A name with accents (Zoë Ñúñez)": _lead(102, first_name="Zoë", last_name="Ñúñez"),
        "No last name, no phone": _lead(103, last_name="", phone=None),
        "No e-mail, booked": _lead(104, email=None, stage=LeadStage.BOOKED, **consult),
        "Booked and confirmed": _lead(
            105, stage=LeadStage.BOOKED, consult_confirmed_at=past, **consult
        ),
        "Consulted (consult in the past)": _lead(
            106, stage=LeadStage.CONSULTED, consult_at=past, consult_version=1
        ),
        "Patient, no consult on record": _lead(107, stage=LeadStage.PATIENT),
        "Lost lead with a past consult": _lead(
            108, stage=LeadStage.LOST, consult_at=past, consult_version=2
        ),
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
