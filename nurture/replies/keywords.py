"""Reading an inbound text: opt-out, opt-in, help, crisis, confirmation, or free text. Pure.

Exact keywords are matched after trimming, lower-casing and stripping accents and punctuation
(FCC 24-24 and CTIA). A phrase that a reasonable person reads as "stop texting me" counts as an
opt-out too, flagged for a person to review. Crisis words are looked for in every text, whatever
else it is: the lexicon is ``keywords.crisis`` in config/policy.yaml, and its corpus of examples
(both ways) is tests/unit/test_crisis_corpus.py.

An e-mail reply is read the same way with :func:`read_email`: the same crisis lexicon, the same
exact keywords, and e-mail's own phrases for "stop e-mailing me".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from nurture.config.policy import Keywords
from nurture.db.models import InboundClass

CONFIRM_WORDS = frozenset({"c", "confirm", "confirmed", "yes c", "c yes"})
# The opt-in word that is also a plain "yes": from someone already subscribed, with a consult
# confirmation asked for, it answers that question rather than asking to be subscribed again.
YES_WORDS = frozenset({"yes"})
# Opt-outs that also ask to call something off: the lead may mean their consult.
CANCEL_WORDS = frozenset({"cancel", "cancelar"})
# Emoji that carry a word; every other emoji is dropped like punctuation.
EMOJI_WORDS = {"\N{OCTAGONAL SIGN}": " stop "}
# What asks for no more (marketing) e-mail in a reply, matched on normalized text ("e-mailing"
# is "e mailing" by then). Free text, so every match is flagged for a person to check.
EMAIL_OPT_OUT_PHRASES = (
    r"\bunsubscrib",
    r"\bstop (?:e ?mail\w*|sending|writing|contacting|messaging)\b",
    r"\b(?:no more|don t|do not|dont|never) (?:send (?:me )?(?:any )?(?:more )?)?e ?mails?\b",
    r"\bremove me\b",
    r"\btake me off\b",
    r"\bopt (?:me )?out\b",
)


def normalize(body: str) -> str:
    """'  Stop!! ' → 'stop'; "Don't text me." → 'don t text me'; 'No más 🛑' → 'no mas stop'."""
    text = unicodedata.normalize("NFKC", body).lower()
    for emoji, word in EMOJI_WORDS.items():
        text = text.replace(emoji, word)
    # Accents off ("más" → "mas", "daño" → "dano"): people type them or not, and mean the same.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return " ".join(text.split())


def _as_keyword(text: str) -> str:
    """One word said several times ("STOP STOP", "🛑🛑") is that word."""
    words = text.split()
    return words[0] if len(words) > 1 and len(set(words)) == 1 else text


@dataclass(frozen=True)
class Reading:
    kind: InboundClass
    crisis: bool  # crisis words anywhere: reply with 988/911 and alert staff, whatever else
    opts_out: bool  # revoke every SMS purpose
    by_phrase: bool  # the opt-out was read from a phrase, not a keyword: a person should review
    yes: bool = False  # the opt-in word was a plain "yes" (it may answer "Reply C to confirm")
    cancel: bool = False  # the opt-out keyword was CANCEL: they may mean a booked consult


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


@lru_cache(maxsize=8)
def _words(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize(word) for word in words)


def read(body: str, keywords: Keywords, *, opt_out_type: str | None = None) -> Reading:
    """Classify a text. ``opt_out_type`` is Twilio's OptOutType field, honoured as given."""
    text = normalize(body)
    word = _as_keyword(text)
    crisis = _crisis_in(text, keywords)
    provider = (opt_out_type or "").strip().upper()
    if provider == "STOP" or word in _words(tuple(keywords.opt_out)):
        cancel = word in CANCEL_WORDS
        return Reading(InboundClass.OPT_OUT, crisis, opts_out=True, by_phrase=False, cancel=cancel)
    if provider == "START" or word in _words(tuple(keywords.opt_in)):
        return Reading(
            InboundClass.OPT_IN, crisis, opts_out=False, by_phrase=False, yes=word in YES_WORDS
        )
    if provider == "HELP" or word in _words(tuple(keywords.help)):
        return Reading(InboundClass.HELP, crisis, opts_out=False, by_phrase=False)
    if any(p.search(text) for p in _compiled(tuple(keywords.opt_out_phrases))):
        kind = InboundClass.CRISIS if crisis else InboundClass.OPT_OUT_PHRASE
        return Reading(kind, crisis, opts_out=True, by_phrase=True)
    if crisis:
        return Reading(InboundClass.CRISIS, True, opts_out=False, by_phrase=False)
    if text in CONFIRM_WORDS:
        return Reading(InboundClass.CONFIRM, False, opts_out=False, by_phrase=False)
    return Reading(InboundClass.OTHER, False, opts_out=False, by_phrase=False)


def _crisis_in(text: str, keywords: Keywords) -> bool:
    """Crisis words anywhere in normalized text: one lexicon for texts and e-mails."""
    return any(p.search(text) for p in _compiled(tuple(keywords.crisis)))


def read_email(text: str, keywords: Keywords) -> Reading:
    """Classify what someone wrote in an e-mail reply (quoted text already removed): crisis,
    an opt-out of e-mail marketing (an exact keyword or a phrase), or a reply for a person.
    Every opt-out is ``by_phrase``: an e-mail is prose, so a person checks it."""
    normalized = normalize(text)
    crisis = _crisis_in(normalized, keywords)
    word = _as_keyword(normalized)
    opts_out = word in _words(tuple(keywords.opt_out)) or any(
        p.search(normalized) for p in _compiled(EMAIL_OPT_OUT_PHRASES)
    )
    if crisis:
        return Reading(InboundClass.CRISIS, True, opts_out=opts_out, by_phrase=opts_out)
    if opts_out:
        return Reading(InboundClass.OPT_OUT_PHRASE, False, opts_out=True, by_phrase=True)
    return Reading(InboundClass.OTHER, False, opts_out=False, by_phrase=False)
