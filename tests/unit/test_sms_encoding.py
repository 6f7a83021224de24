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


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        # A two-septet character is never split: at 152 septets the escape would end segment 1
        # and the character begin segment 2, so the € moves whole and segment 1 is 152 long.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("a" * 151 + "€" + "a" * 153, 2),  # the € fits exactly: 153 + 153
        # A surrogate pair (most emoji) is never split either.
        ("a" * 66 + "😜" + "a" * 66, 3),
        ("a" * 65 + "😜" + "a" * 67, 2),
        ("😀" * 33 + "a" * 67, 2),  # 66 units of pairs and one a, then 66 a: 67 + 66
    ],
)
def test_rule_16_segments_are_counted_as_carriers_cut_them(text: str, segments: int) -> None:
    assert measure(text).segments == segments
