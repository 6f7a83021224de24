"""Every way people say STOP, HELP or YES (compliance rules 7, 9, 11; issue 12).

Exact keywords (the whole message, in any case, with punctuation or emoji around) opt out with
no review; phrases opt out too and are flagged for a person; words that only look like an
opt-out ("do I need to stop my meds?", "cancel my appointment?") are left for a person.
"""

from __future__ import annotations

import pytest

from nurture.config.policy import load_policy
from nurture.db.models import InboundClass
from nurture.replies.keywords import normalize, read
from tests.conftest import REPO

KEYWORDS = load_policy(REPO / "config").keywords


@pytest.mark.parametrize(
    "body",
    [
        "no more",
        "No more.",
        "PARAR",
        "parar",
        "ALTO",
        "Alto!",
        "BASTA",
        "basta!!",
        "CANCELAR",
        "Cancelar.",
        "🛑",
        "🛑🛑🛑",
        "🛑️",  # with the emoji presentation selector
        " 🛑 ",
        "STOP 🛑",
        "🙏 stop 🙏",
        "STOP STOP",
        "Stop.",
        "CANCEL",
        "cancel!",
    ],
)
def test_rule_7_the_whole_message_is_an_opt_out_keyword(body: str) -> None:
    reading = read(body, KEYWORDS)
    assert reading.kind is InboundClass.OPT_OUT
    assert reading.opts_out and not reading.by_phrase


@pytest.mark.parametrize(
    "body",
    [
        "Take me off your list",
        "take me off the list please",
        "please remove me",
        "Remove my number",
        "unsubscribe me",
        "UNSUBSCRIBE ME NOW",
        "don't text me",
        "Do not text me again",
        "dont txt me",
        "stop texting",
        "Stop texting me!!",
        "STOP sending these",
        "why can't you stop texting me",  # "can't stop" is excluded, "stop texting" is not
        "no more texts please",
        "No more, please",
        "no más mensajes",
        "no mas",
        "no quiero recibir mensajes",
        "no quiero seguir recibiendo mensajes",
        "ya no me envíen nada",
        "quiero darme de baja",
        "wrong number",
        "please stop",
        "🛑 please",
    ],
)
def test_rule_7_phrases_are_honoured_and_flagged_for_review(body: str) -> None:
    reading = read(body, KEYWORDS)
    assert reading.kind is InboundClass.OPT_OUT_PHRASE
    assert reading.opts_out and reading.by_phrase


@pytest.mark.parametrize(
    "body",
    [
        "cancel my appointment?",  # a request for a person: CANCEL is a keyword only alone
        "Can I cancel and rebook?",
        "pills? do I need to stop my meds before the consult",
        "Should I stop taking my medication before?",
        "can I stop by the clinic tomorrow?",
        "I'm at the bus stop, running late",
        "I can't stop crying",  # distress, not an opt-out: a person reads it (and it pauses)
        "no more than 20 minutes away",  # not the whole message, no "texts" after it
        "alto sax lessons?",
        "I want to talk to someone before I book",
    ],
)
def test_rule_7_look_alikes_are_not_opt_outs(body: str) -> None:
    reading = read(body, KEYWORDS)
    assert not reading.opts_out
    assert reading.kind is InboundClass.OTHER


@pytest.mark.parametrize(
    ("body", "cancel"), [("CANCEL", True), ("Cancelar!", True), ("STOP", False)]
)
def test_rule_7_cancel_is_marked_so_staff_can_ask_about_a_consult(body: str, cancel: bool) -> None:
    assert read(body, KEYWORDS).cancel is cancel


@pytest.mark.parametrize(("body", "yes"), [("YES", True), ("yes!", True), ("Start", False)])
def test_rule_11_a_plain_yes_is_marked(body: str, yes: bool) -> None:
    reading = read(body, KEYWORDS)
    assert reading.kind is InboundClass.OPT_IN
    assert reading.yes is yes


def test_rule_7_help_alone_stays_the_help_keyword() -> None:
    assert read("HELP", KEYWORDS).kind is InboundClass.HELP
    assert read("help help", KEYWORDS).kind is InboundClass.HELP
    assert read("help me", KEYWORDS).kind is InboundClass.CRISIS  # a person asking


def test_normalize_strips_accents_and_reads_the_stop_sign() -> None:
    assert normalize("¡No MÁS! 🛑") == "no mas stop"
    assert normalize("hacerme daño") == "hacerme dano"
    assert normalize("😭😭") == ""
