"""The crisis lexicon against what people really send (compliance rule 26).

Every text in CRISIS must get the crisis path (988/911 reply, staff alert, on-call page); every
text in ORDINARY must not. Misses are worse than false alarms: a needless crisis reply costs an
apology, a missed one may cost a life. So a borderline text lands in CRISIS unless it is an
everyday message people send this clinic (scheduling, meds questions, distances, prices), and a
comment says why. Add every miss or false alarm seen in production here, with its verdict.

The lexicon itself is ``keywords.crisis`` in config/policy.yaml, matched on the normalised text
(lower case, accents and punctuation removed: "can't" reads "can t").
"""

from __future__ import annotations

import pytest

from nurture.config.policy import load_policy
from nurture.db.models import InboundClass
from nurture.replies.keywords import read
from tests.conftest import REPO

KEYWORDS = load_policy(REPO / "config").keywords

CRISIS = [
    # The words named in issue 12.
    "kms",
    "KMS",
    "i'm going to kms",
    "lol kms",  # often said as a joke; read as meant, because sometimes it is
    "kys",
    "I can't go on",
    "i cant go on anymore",
    "I can't go on like this",
    "I just can't go on today",  # "today" is not excluded like weekdays: it reads as despair
    "I can't go on the way things are",  # "the way" is not a date: not a reschedule
    "I took too many pills",
    "took too many",
    "I swallowed a bottle of my sleeping pills",
    "took all my meds at once",
    "I'm going to take all of them tonight",  # intent + "all": crisis, without naming the drug
    "too many pills",  # alone it reads as an overdose, though it may be a question about dosing
    "life is not worth living",
    "not worth living anymore",
    "it's not worth it anymore",
    "goodbye forever",
    "Goodbye.",  # alone: nobody says goodbye to an automated program; "bye" is not counted
    "goodbye everyone, thank you for trying",
    "this is goodbye",
    "quiero morir",
    "Me quiero morir",
    "quiero morirme",
    "matarme",
    "voy a matarme",
    "me voy a matar",
    # Their cousins, English.
    "I want to die",
    "i wanna die",
    "I just want to be dead",
    "I wish I was dead",
    "I'd rather die than keep feeling this way",
    "I'm going to die",  # also said of boredom; the risk of a miss outweighs that
    "everyone would be better off without me",
    "sometimes I think I'd be better off dead",
    "I'm going to end it all",
    "I might end my life",
    "planning to take my own life",
    "I want to end it tonight",
    "I'm thinking about suicide",
    "Suicidal thoughts lately",
    "I'm going to kill myself",
    "i could kill myself laughing",  # hyperbole, but "kill myself" is never waved through
    "thinking about how to unalive myself",
    "took an overdose",
    "I'm going to OD",
    "I OD'd last night",
    "thinking of self-harm",
    "I hurt myself again",
    "I hurt myself at the gym",  # likely a sprain; "hurt myself" still reaches a person
    "I keep cutting myself",
    "I want to hang myself",
    "I'm going to jump off the bridge",
    "I don't want to live anymore",
    "I don't want to be alive",
    "i dont want to wake up tomorrow",
    "I don't want to be here anymore",
    "I hope I never wake up",
    "there's no reason to live",
    "I have nothing left to live for",
    "no point in living",
    "I can't keep going",
    "I can't do this anymore",
    "I can't take it anymore",
    "there's no way out",
    "I feel hopeless",
    "I give up",
    "I'm giving up on life",
    "I won't be around much longer",
    "this is my last message",  # could be a move to another clinic; read as a farewell
    "please just kill me",
    "I'm suicidal",
    "I can't live like this",
    "I'm ending my life",
    "i am going to hurt myself",
    # "I need help now": HELP alone is the HELP keyword; these ask for a person.
    "help me",
    "Help me please!!",
    "I need help now",
    "i need help",
    "somebody help me",
    # Their cousins, Spanish.
    "No quiero vivir",
    "ya no quiero vivir mas",
    "no quiero seguir viviendo",
    "voy a suicidarme",
    "pienso en el suicidio",
    "quiero quitarme la vida",
    "quiero acabar con todo",
    "tomé demasiadas pastillas",
    "tome demasiadas pastillas",  # the same, typed without the accent
    "no vale la pena vivir",
    "no tengo razón para vivir",
    "estaría mejor muerta",
    "quiero hacerme daño",
    "tomé una sobredosis",
    "ya no puedo más",
    "no aguanto más",
    "adiós para siempre",
    "me quiero desaparecer",
    "voy a tomarme todas las pastillas",
    "no quiero despertar",
    # Dressed up: capitals, emoji, no apostrophes.
    "I CANT GO ON 😭",
    "want to die.....",
    "KILL MYSELF",
]

ORDINARY = [
    # Hyperbole that names no harm to oneself.
    "this traffic is killing me",
    "I'm dying to know the price",
    "I'd kill for an earlier appointment",
    "I killed it at work today!",
    "my phone died, sorry for the late reply",
    "I'm dead tired after work",
    # "kms" as kilometres: after a number, or before "away", "from", "to".
    "The clinic is 10 kms away",
    "it's like 80 kms",
    "how many kms from Pocatello?",
    "a few kms away from the clinic",
    # Words that only contain the letters.
    "skills",
    "odd question: is there parking?",
    "What's the zip code?",
    # Everyday replies.
    "thanks",
    "Thank you so much!",
    "ok",
    "bye",
    "ok bye",
    "thanks, bye!",
    "What time is my appointment?",
    "Can I bring my wife?",
    # Scheduling: "can go on" and "can't go on <a day>" are reschedules, not despair.
    "I can go on Tuesday",
    "I can't go on Tuesday, can we do Thursday?",
    "can't go on the 5th",
    "I can't go on tomorrow, could we move it?",  # "tomorrow" is a date here; "today" is not
    "I can't go next week",
    # Medication questions before a consult.
    "pills? do I need to stop my meds before the consult",
    "Should I take all my meds the morning of the consult?",
    "I take a lot of medications, is that a problem?",
    "do I keep taking my prescriptions?",
    # Help that is about booking, not a person in danger.
    "HELP",  # the HELP keyword: its reply gives the clinic's phone (CTIA)
    "can you help me book a time?",
    "I need help with my insurance",
    "can someone help me reschedule",
    # Hurt, but not by oneself.
    "I hurt my back, can I still come?",
    "my dog died last week so I need to reschedule",
    # Spanish everyday.
    "me muero de ganas de conocerlos",  # "I'm dying to meet you": an idiom
    "voy a cortarme el pelo antes de la cita",  # a haircut, not cutting oneself
    "no puedo más tarde, ¿puede ser temprano?",  # "I can't later": "más tarde" is a time
    "no quiero seguir recibiendo mensajes",  # an opt-out, not despair
    "gracias",
    "¿A qué hora es mi cita?",
]


@pytest.mark.parametrize("text", CRISIS)
def test_rule_26_crisis_corpus_reaches_the_crisis_path(text: str) -> None:
    reading = read(text, KEYWORDS)
    assert reading.crisis, f"missed: {text!r}"
    # Whatever else it is (an opt-out phrase, a keyword), the crisis path comes first.
    assert reading.kind is InboundClass.CRISIS or reading.kind in {
        InboundClass.OPT_OUT,
        InboundClass.HELP,
    }


@pytest.mark.parametrize("text", ORDINARY)
def test_rule_26_ordinary_replies_do_not_trigger_the_crisis_path(text: str) -> None:
    reading = read(text, KEYWORDS)
    assert not reading.crisis, f"false alarm: {text!r}"
    assert reading.kind is not InboundClass.CRISIS


def test_rule_26_the_corpus_is_large_enough_to_mean_something() -> None:
    # The corpus only grows: a pattern removed for one false alarm must not lose any of these.
    assert len(CRISIS) >= 100
    assert len(ORDINARY) >= 40
    assert not set(CRISIS) & set(ORDINARY)
