"""Unsubscribe tokens are HMACs: opaque, stable, unforgeable."""

from __future__ import annotations

import uuid

import pytest

from nurture.consent import tokens
from nurture.db.models import Purpose

SECRET = b"s3cret"
LEAD = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_a_token_verifies_to_its_lead_and_purpose() -> None:
    token = tokens.sign(SECRET, LEAD, Purpose.MARKETING)
    assert tokens.verify(SECRET, token) == tokens.LinkSubject(LEAD, Purpose.MARKETING)
    assert tokens.sign(SECRET, LEAD, Purpose.MARKETING) == token  # stable: links keep working
    assert str(LEAD) not in token


def test_a_token_from_another_key_is_refused() -> None:
    assert tokens.verify(b"other", tokens.sign(SECRET, LEAD, Purpose.MARKETING)) is None


@pytest.mark.parametrize("position", [0, 5, 16, 20, 30, -1])
def test_any_altered_character_is_refused(position: int) -> None:
    token = tokens.sign(SECRET, LEAD, Purpose.MARKETING)
    chars = list(token)
    chars[position] = "A" if chars[position] != "A" else "B"
    assert tokens.verify(SECRET, "".join(chars)) is None


@pytest.mark.parametrize("garbage", ["", "x", "!!!!", "A" * 44, "é" * 10])
def test_garbage_is_refused(garbage: str) -> None:
    assert tokens.verify(SECRET, garbage) is None
