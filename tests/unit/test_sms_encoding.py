"""GSM-7 vs UCS-2 and segment counts (compliance rule 16)."""

from __future__ import annotations

import pytest

from nurture.content.sms_encoding import measure


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("[" * 81, "GSM-7", 162, 2),
        ("a" * 69 + "’", "UCS-2", 70, 1),  # one curly quote switches everything
        ("a" * 70 + "’", "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("a" * 134, "GSM-7", 134, 1),
        ("a" * 133 + "é", "GSM-7", 134, 1),  # é is in GSM-7's basic set
        ("", "GSM-7", 0, 1),
    ],
)
def test_measure(text: str, encoding: str, units: int, segments: int) -> None:
    shape = measure(text)
    assert (shape.encoding, shape.units, shape.segments) == (encoding, units, segments)


def test_names_the_characters_that_forced_ucs2() -> None:
    assert measure("Don’t miss it 😀 don’t").non_gsm_characters == ("’", "😀")
    assert measure("plain text").non_gsm_characters == ()
