"""Reading an inbound text: opt-out, opt-in, help, crisis, confirmation, or free text. Pure.

Exact keywords are matched after trimming, lower-casing and stripping punctuation (FCC 24-24 and
CTIA). A phrase that a reasonable person reads as "stop texting me" counts as an opt-out too,
flagged for a person to review. Crisis words are looked for in every text, whatever else it is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from nurture.config.policy import Keywords
from nurture.db.models import InboundClass

CONFIRM_WORDS = frozenset({"c", "confirm", "confirmed", "yes c", "c yes"})


def normalize(body: str) -> str:
    """'  Stop!! ' → 'stop'; "Don't text me." → 'don t text me'."""
    text = unicodedata.normalize("NFKC", body).lower()
    text = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Reading:
    kind: InboundClass
    crisis: bool  # crisis words anywhere: reply with 988/911 and alert staff, whatever else
    opts_out: bool  # revoke every SMS purpose
    by_phrase: bool  # the opt-out was read from a phrase, not a keyword: a person should review


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


def read(body: str, keywords: Keywords, *, opt_out_type: str | None = None) -> Reading:
    """Classify a text. ``opt_out_type`` is Twilio's OptOutType field, honoured as given."""
    text = normalize(body)
    crisis = any(p.search(text) for p in _compiled(tuple(keywords.crisis)))
    provider = (opt_out_type or "").strip().upper()
    if provider == "STOP" or text in {normalize(word) for word in keywords.opt_out}:
        return Reading(InboundClass.OPT_OUT, crisis, opts_out=True, by_phrase=False)
    if provider == "START" or text in {normalize(word) for word in keywords.opt_in}:
        return Reading(InboundClass.OPT_IN, crisis, opts_out=False, by_phrase=False)
    if provider == "HELP" or text in {normalize(word) for word in keywords.help}:
        return Reading(InboundClass.HELP, crisis, opts_out=False, by_phrase=False)
    if any(p.search(text) for p in _compiled(tuple(keywords.opt_out_phrases))):
        kind = InboundClass.CRISIS if crisis else InboundClass.OPT_OUT_PHRASE
        return Reading(kind, crisis, opts_out=True, by_phrase=True)
    if crisis:
        return Reading(InboundClass.CRISIS, True, opts_out=False, by_phrase=False)
    if text in CONFIRM_WORDS:
        return Reading(InboundClass.CONFIRM, False, opts_out=False, by_phrase=False)
    return Reading(InboundClass.OTHER, False, opts_out=False, by_phrase=False)
