"""Sample data for previews, lint and simulations: what a template may rely on being there."""

from __future__ import annotations

from typing import Any

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
