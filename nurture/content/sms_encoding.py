"""How a text will travel: GSM-7 or UCS-2, and how many segments it costs.

One non-GSM character (a curly quote, an emoji) switches the whole message to UCS-2 and cuts a
segment from 160 to 70 characters, so the linter names the character that did it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as an escape plus the character: each costs two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsShape:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    non_gsm_characters: tuple[str, ...]  # the characters that forced UCS-2, in order, once each


def measure(text: str) -> SmsShape:
    non_gsm = tuple(
        dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION)
    )
    if not non_gsm:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        segments = 1 if units <= 160 else math.ceil(units / 153)
        return SmsShape("GSM-7", units, segments, ())
    units = len(text.encode("utf-16-le")) // 2
    segments = 1 if units <= 70 else math.ceil(units / 67)
    return SmsShape("UCS-2", units, segments, non_gsm)
