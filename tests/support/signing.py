"""Signing webhook requests exactly as Twilio does."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

AUTH_TOKEN = "twilio-test-token"


def signed_headers(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}
