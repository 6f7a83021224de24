"""Signing webhook requests exactly as Twilio does."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from tests.conftest import TWILIO_TEST_AUTH_TOKEN

AUTH_TOKEN = TWILIO_TEST_AUTH_TOKEN


def signed_headers(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}
