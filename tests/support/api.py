"""What the clinic's own systems send to POST /api/v1/signups: the API key, and the disclosure
version their page showed (the shipped config/disclosures.yaml's)."""

from __future__ import annotations

from typing import Any

from nurture.config.clinic import load_disclosures
from tests.conftest import REPO
from tests.support.factories import signup_data

API_KEY = {"Authorization": "Bearer test-api-key"}
INTEGRATION_API_KEY = {"Authorization": "Bearer integration-api-key"}
DISCLOSURE_VERSION = load_disclosures(REPO / "config").version


def api_signup_data(**overrides: Any) -> dict[str, Any]:
    """:func:`signup_data` naming the disclosure version the server knows."""
    return signup_data(**{"consent_version": DISCLOSURE_VERSION, **overrides})
