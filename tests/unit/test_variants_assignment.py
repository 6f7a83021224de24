"""Which variant a lead gets (issue 15 §3): deterministic per lead and step, spread by the
weights, the same in every process."""

from __future__ import annotations

import hashlib
import math
import os
import random
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from nurture.outbox.variants import assign, assignment_point
from nurture.program.sequences import Step, Variant

LEADS = 10_000
# Each arm's count is binomial(n, p): sd = sqrt(n p (1 - p)), 50 leads for p = 1/2 at n = 10,000.
# The leads are fixed (a seeded generator), so the test is deterministic; 4 sd is the tolerance a
# fair assignment passes with probability 0.99994 per arm, and a biased one (say 52/48, 4 sd
# away) fails.
SDS = 4


def step_with(*weights: int, key: str = "nudge") -> Step:
    return Step(
        key=key,
        channel="email",
        purpose="marketing",
        offset="1d",
        variants=tuple(
            Variant(name=chr(ord("A") + n), template=f"template-{n}", weight=weight)
            for n, weight in enumerate(weights)
        ),
    )


def arm(lead: uuid.UUID, sequence_key: str, step: Step) -> str:
    variant = assign(lead, sequence_key, step)
    assert variant is not None
    return variant.name


def synthetic_leads(count: int = LEADS, seed: int = 15) -> list[uuid.UUID]:
    generator = random.Random(seed)
    return [uuid.UUID(int=generator.getrandbits(128), version=4) for _ in range(count)]


@pytest.mark.parametrize("weights", [(1, 1), (1, 3), (1, 1, 1, 2), (5, 3, 2)])
def test_the_split_over_ten_thousand_leads_follows_the_weights(weights: tuple[int, ...]) -> None:
    step = step_with(*weights)
    counts = Counter(arm(lead, "ab-nurture", step) for lead in synthetic_leads())
    total = sum(weights)
    for n, weight in enumerate(weights):
        p = weight / total
        expected, sd = LEADS * p, math.sqrt(LEADS * p * (1 - p))
        got = counts[chr(ord("A") + n)]
        assert abs(got - expected) <= SDS * sd, (weights, dict(counts))


def test_the_same_lead_always_gets_the_same_variant() -> None:
    step = step_with(1, 1)
    for lead in synthetic_leads(200):
        first = assign(lead, "ab-nurture", step)
        assert all(assign(lead, "ab-nurture", step) == first for _ in range(3))
        # A re-built step (a reload of the file) changes nothing either.
        assert assign(lead, "ab-nurture", step_with(1, 1)) == first


def test_steps_and_sequences_are_assigned_independently() -> None:
    """One lead's variant of one test says nothing about its variant of another: otherwise the
    same leads would always be in arm A everywhere."""
    first, second = step_with(1, 1), step_with(1, 1, key="other-nudge")
    leads = synthetic_leads()
    same_step = sum(assign(x, "s", first) == assign(x, "s", second) for x in leads)
    same_sequence = sum(assign(x, "s", first) == assign(x, "t", first) for x in leads)
    for agreeing in (same_step, same_sequence):
        assert abs(agreeing - LEADS / 2) <= SDS * 50


def test_the_point_is_sha256_of_lead_sequence_and_step() -> None:
    lead = uuid.UUID("0b9c3c5e-36f4-4d3c-8a4b-9f2b7c1d0e11")
    digest = hashlib.sha256(f"{lead}:ab-nurture:nudge".encode()).digest()
    assert (
        assignment_point(lead, "ab-nurture", "nudge") == (int.from_bytes(digest[:8]) >> 11) / 2**53
    )
    point = assignment_point(lead, "ab-nurture", "nudge")
    # Weights 1:3 give A the slice [0, 1/4) and B [1/4, 1).
    assert arm(lead, "ab-nurture", step_with(1, 3)) == ("A" if point < 0.25 else "B")


def test_the_assignment_does_not_depend_on_the_process_hash_seed() -> None:
    """Python's hash() of a text changes with PYTHONHASHSEED: a web process and a worker would
    disagree. The assignment must not."""
    code = (
        "from tests.unit.test_variants_assignment import arm, step_with, synthetic_leads\n"
        "step = step_with(1, 1, 1)\n"
        "print(''.join(arm(x, 's', step) for x in synthetic_leads(300)))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "12345")
    }
    here = "".join(arm(x, "s", step_with(1, 1, 1)) for x in synthetic_leads(300)) + "\n"
    assert runs == {here}


def test_a_step_without_variants_has_no_assignment() -> None:
    plain = Step(key="hello", channel="email", purpose="care", template="welcome", offset="0s")
    assert assign(uuid.uuid4(), "s", plain) is None
