"""Inbound classification (compliance rules 7, 13, 14, 26)."""

from __future__ import annotations

import pytest

from nurture.config.policy import load_policy
from nurture.db.models import InboundClass
from nurture.replies.keywords import normalize, read
from tests.conftest import REPO

KEYWORDS = load_policy(REPO / "config").keywords

OPT_OUT = ["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"]


@pytest.mark.parametrize("word", OPT_OUT)
@pytest.mark.parametrize("dress", ["{}", "{} ", "  {}", "{}.", "{}!!", "{}".upper(), "'{}'"])
def test_rule_7_every_opt_out_keyword_in_any_dress(word: str, dress: str) -> None:
    body = dress.format(word.upper() if dress.isupper() else word)
    reading = read(body, KEYWORDS)
    assert reading.kind is InboundClass.OPT_OUT
    assert reading.opts_out and not reading.by_phrase


@pytest.mark.parametrize("word", ["Stop", "STOP", "sToP", "Opt-Out", "OPT OUT", "opt.out"])
def test_rule_7_case_and_punctuation_do_not_matter(word: str) -> None:
    assert read(word, KEYWORDS).opts_out


@pytest.mark.parametrize(
    "phrase",
    [
        "stop texting me",
        "Please stop",
        "please STOP!",
        "No more texts",
        "no more messages please",
        "don't text me",
        "Dont message me again",
        "leave me alone",
        "remove me from your list",
        "opt me out",
        "no más",
        "wrong number",
        "unsubscribe me please",
    ],
)
def test_rule_7_phrases_read_as_opt_outs_are_honoured_and_flagged(phrase: str) -> None:
    reading = read(phrase, KEYWORDS)
    assert reading.kind is InboundClass.OPT_OUT_PHRASE
    assert reading.opts_out and reading.by_phrase


@pytest.mark.parametrize("word", ["start", "START", "unstop", "Yes", "yes!"])
def test_rule_11_only_start_yes_unstop_opt_back_in(word: str) -> None:
    assert read(word, KEYWORDS).kind is InboundClass.OPT_IN


@pytest.mark.parametrize("word", ["help", "HELP", "info", "Info?"])
def test_rule_13_help_and_info(word: str) -> None:
    assert read(word, KEYWORDS).kind is InboundClass.HELP


@pytest.mark.parametrize(
    "text",
    [
        "I want to die",
        "i've been thinking about suicide",
        "I'm going to kill myself",
        "I might end my life",
        "took an overdose",
        "thinking of self-harm",
        "I hurt myself again",
        "i wanna die",
        "sometimes I think I'd be better off dead",
        "I don't want to be alive",
        "Suicidal thoughts lately",
    ],
)
def test_rule_26_crisis_words(text: str) -> None:
    reading = read(text, KEYWORDS)
    assert reading.crisis
    assert reading.kind is InboundClass.CRISIS


def test_crisis_words_with_an_opt_out_phrase_are_both() -> None:
    reading = read("I want to die, stop texting me", KEYWORDS)
    assert reading.crisis and reading.opts_out


@pytest.mark.parametrize(
    "text", ["What time is my appointment?", "Thanks!", "Can I bring my wife?", "ok"]
)
def test_everything_else_is_a_reply_for_a_person(text: str) -> None:
    reading = read(text, KEYWORDS)
    assert reading.kind is InboundClass.OTHER
    assert not reading.crisis and not reading.opts_out


@pytest.mark.parametrize("text", ["C", "c", "Confirm", "CONFIRMED"])
def test_confirmations(text: str) -> None:
    assert read(text, KEYWORDS).kind is InboundClass.CONFIRM


@pytest.mark.parametrize(
    ("opt_out_type", "kind"),
    [("STOP", InboundClass.OPT_OUT), ("START", InboundClass.OPT_IN), ("HELP", InboundClass.HELP)],
)
def test_twilios_opt_out_type_is_honoured(opt_out_type: str, kind: InboundClass) -> None:
    assert read("arrêter", KEYWORDS, opt_out_type=opt_out_type).kind is kind


def test_normalize() -> None:
    assert normalize("  Don't   STOP! ") == "don t stop"
