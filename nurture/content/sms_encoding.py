"""How a text will travel: GSM-7 or UCS-2, and how many segments it costs.

One non-GSM character (a curly quote, an emoji) switches the whole message to UCS-2 and cuts a
segment from 160 to 70 characters, so the linter names the character that did it.

Segments are counted as carriers cut them (3GPP TS 23.040; Twilio's segment calculator does the
same): a character is never split across two segments, so a two-septet GSM character (an
escape plus the character) or a UTF-16 surrogate pair (most emoji) that would straddle a
boundary starts the next segment, and the segment it left is one unit short.
"""

from __future__ import annotations

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
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return SmsShape("GSM-7", sum(sizes), _segments(sizes, single=160, part=153), ())
    sizes = [len(c.encode("utf-16-le")) // 2 for c in text]
    return SmsShape("UCS-2", sum(sizes), _segments(sizes, single=70, part=67), non_gsm)


def _segments(sizes: list[int], *, single: int, part: int) -> int:
    """How many segments characters of these sizes fill, none of them split across two."""
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments
