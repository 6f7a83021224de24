"""The A/B statistics against numbers computed here, independently of the product code."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.experiments import (
    Arm,
    credible_interval,
    decide,
    posterior_cdf,
    posterior_quantile,
    probability_best,
)


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def miller_b_beats_a(a: Arm, b: Arm) -> float:
    """Evan Miller's closed form of P(rate_B > rate_A) for integer Beta parameters."""
    return math.fsum(
        math.exp(
            log_beta(a.alpha + i, a.beta + b.beta)
            - math.log(b.beta + i)
            - log_beta(1 + i, b.beta)
            - log_beta(a.alpha, a.beta)
        )
        for i in range(b.alpha)
    )


TWO_ARMS = [
    (Arm("A", 10, 3), Arm("B", 12, 5)),  # small
    (Arm("A", 1000, 50), Arm("B", 1000, 70)),
    (Arm("A", 200, 20), Arm("B", 5000, 600)),  # unbalanced
    (Arm("A", 10000, 500), Arm("B", 10000, 540)),  # large n
    (Arm("A", 10000, 0), Arm("B", 10000, 3)),  # rates at the edge
    (Arm("A", 0, 0), Arm("B", 0, 0)),  # no data: 0.5
    (Arm("A", 400, 40), Arm("B", 400, 40)),  # equal arms: 0.5
    # A wide arm beside a narrow one: in the wide arm's u the narrow one's step is a sliver
    # (hypothesis found it summing to 1 + 1e-9 before the panels followed every arm's edges).
    (Arm("A", 941, 752), Arm("B", 3, 0)),
    (Arm("A", 3, 0), Arm("B", 941, 752)),
]


@pytest.mark.parametrize(("a", "b"), TWO_ARMS)
def test_two_arms_match_the_closed_form(a: Arm, b: Arm) -> None:
    probabilities = probability_best([a, b])
    # lgamma's rounding on arguments near 20,000 is about 1e-11; the promise is 1e-6.
    assert probabilities["B"] == pytest.approx(miller_b_beats_a(a, b), abs=1e-9)
    assert probabilities["A"] + probabilities["B"] == pytest.approx(1, abs=1e-9)


def test_equal_arms_are_even() -> None:
    assert probability_best([Arm("A", 400, 40), Arm("B", 400, 40)])["A"] == pytest.approx(0.5)


DRAWS = 200_000


@pytest.mark.parametrize(
    "arms",
    [
        [Arm("A", 300, 30), Arm("B", 300, 36), Arm("C", 300, 27)],
        [Arm("A", 500, 25), Arm("B", 400, 28), Arm("C", 600, 30), Arm("D", 100, 8)],
    ],
)
def test_three_and_four_arms_match_a_seeded_monte_carlo(arms: list[Arm]) -> None:
    rng = random.Random(20260303)
    wins = dict.fromkeys((arm.name for arm in arms), 0)
    for _ in range(DRAWS):
        draws = [(rng.betavariate(arm.alpha, arm.beta), arm.name) for arm in arms]
        wins[max(draws)[1]] += 1
    probabilities = probability_best(arms)
    assert sum(probabilities.values()) == pytest.approx(1, abs=1e-9)
    for name, count in wins.items():
        estimate = count / DRAWS
        # A win count is binomial: its standard error is sqrt(p(1-p)/N), at most 0.0011 here.
        # Five standard errors (plus one draw) miss a correct value about once in 1.7 million.
        tolerance = 5 * math.sqrt(estimate * (1 - estimate) / DRAWS) + 1 / DRAWS
        assert probabilities[name] == pytest.approx(estimate, abs=tolerance)


@pytest.mark.parametrize("q", [0.0, 0.001, 0.025, 0.3, 0.5, 0.975, 1.0])
def test_quantiles_of_closed_form_betas(q: float) -> None:
    assert posterior_quantile(Arm("u", 0, 0), q) == pytest.approx(q, abs=1e-12)  # Beta(1,1)
    assert posterior_quantile(Arm("s", 1, 1), q) == pytest.approx(math.sqrt(q), abs=1e-12)
    assert posterior_quantile(Arm("f", 1, 0), q) == pytest.approx(1 - math.sqrt(1 - q), abs=1e-12)
    # Beta(1, 101): the CDF is 1 - (1 - x)^101
    assert posterior_quantile(Arm("z", 100, 0), q) == pytest.approx(
        1 - (1 - q) ** (1 / 101), abs=1e-12
    )


@pytest.mark.parametrize("arm", [Arm("m", 10, 5), Arm("big", 2000, 1000)])
def test_symmetric_posteriors_have_symmetric_quantiles(arm: Arm) -> None:
    assert posterior_quantile(arm, 0.5) == pytest.approx(0.5, abs=1e-12)
    for q in (0.01, 0.2, 0.4):
        assert posterior_quantile(arm, q) + posterior_quantile(arm, 1 - q) == pytest.approx(1)


def binomial_tail_cdf(arm: Arm, x: float) -> float:
    """I_x(a, b) for integers: P(Binomial(a + b - 1, x) >= a)."""
    a, b = arm.alpha, arm.beta
    n = a + b - 1
    return math.fsum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))


@pytest.mark.parametrize("arm", [Arm("a", 30, 4), Arm("b", 60, 45), Arm("c", 150, 15)])
def test_cdf_and_quantiles_agree_with_the_binomial_closed_form(arm: Arm) -> None:
    for x in (0.01, 0.05, 0.1, 0.3, 0.7, 0.9):
        assert posterior_cdf(arm, x) == pytest.approx(binomial_tail_cdf(arm, x), abs=1e-12)
    for q in (0.025, 0.5, 0.975):
        assert binomial_tail_cdf(arm, posterior_quantile(arm, q)) == pytest.approx(q, abs=1e-10)


def test_credible_interval_is_equal_tailed() -> None:
    low, high = credible_interval(Arm("s", 1, 1))  # Beta(2, 1)
    assert (low, high) == pytest.approx((math.sqrt(0.025), math.sqrt(0.975)), abs=1e-12)
    assert credible_interval(Arm("u", 0, 0), mass=0.5) == pytest.approx((0.25, 0.75), abs=1e-12)


def test_min_sample_refusal_even_at_certainty() -> None:
    arms = [Arm("A", 1000, 500), Arm("B", 120, 0)]
    decision = decide(arms)
    assert decision.probabilities["A"] > 0.999999
    assert decision.winner is None
    assert decision.reason == "not enough data: variant B has 120 of the 200 leads needed"


def test_seeded_test_calls_the_expected_winner() -> None:
    decision = decide([Arm("A", 1000, 50), Arm("B", 1000, 80)])
    assert decision.winner == "B"
    assert decision.reason == "B is best with 99.6 % probability"
    assert set(decision.intervals) == {"A", "B"}


def test_threshold_boundary() -> None:
    arms = [Arm("A", 400, 40), Arm("B", 400, 56)]
    p = probability_best(arms)["B"]
    assert decide(arms, threshold=p).winner == "B"
    below = decide(arms, threshold=math.nextafter(p, 1))
    assert below.winner is None
    assert below.reason.startswith("no variant is ahead with")


def test_tie_names_both() -> None:
    decision = decide([Arm("A", 300, 30), Arm("B", 300, 30)])
    assert decision.winner is None
    assert decision.reason == (
        "no variant is ahead with 95 % probability yet (best: A and B tied at 50.0 %)"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Arm("B", 10, 11), "arm 'B': booked must be between 0 and reached"),
        (lambda: Arm("B", -1, 0), "arm 'B': reached cannot be negative"),
        (lambda: Arm("B", 10, True), "arm 'B': booked must be a whole number"),
        (lambda: Arm("", 10, 1), "an arm needs a name"),
        (lambda: decide([Arm("A", 1, 0)]), "compares 2 to 4 arms, got 1"),
        (lambda: decide([Arm(n, 1, 0) for n in "ABCDE"]), "compares 2 to 4 arms, got 5"),
        (lambda: decide([Arm("A", 1, 0), Arm("A", 2, 0)]), "two arms are named 'A'"),
        (lambda: decide([Arm("A", 1, 0), Arm("B", 2, 0)], threshold=0.5), "threshold"),
        (lambda: decide([Arm("A", 1, 0), Arm("B", 2, 0)], min_per_arm=-1), "min_per_arm"),
    ],
)
def test_bad_input_is_refused_clearly(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()  # type: ignore[operator]


arm_counts = st.integers(min_value=0, max_value=3000).flatmap(
    lambda reached: st.tuples(st.just(reached), st.integers(min_value=0, max_value=reached))
)


@settings(max_examples=25, deadline=None)
@given(st.lists(arm_counts, min_size=2, max_size=4))
def test_probabilities_sum_to_one(counts: list[tuple[int, int]]) -> None:
    arms = [Arm(f"v{i}", reached, booked) for i, (reached, booked) in enumerate(counts)]
    assert sum(probability_best(arms).values()) == pytest.approx(1, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(arm_counts, arm_counts, st.integers(min_value=1, max_value=50))
def test_more_bookings_never_lower_p_best(
    mine: tuple[int, int], other: tuple[int, int], extra: int
) -> None:
    reached, booked = mine
    more = min(reached, booked + extra)
    before = probability_best([Arm("A", reached, booked), Arm("B", *other)])["A"]
    after = probability_best([Arm("A", reached, more), Arm("B", *other)])["A"]
    assert after >= before - 1e-9


def test_a_tiny_arm_beside_a_huge_one_gets_an_answer() -> None:
    # An adaptive integrator once spun on this pair (far tails of a narrow posterior): the fixed
    # quadrature in u = F_i(x) has no tail to chase.
    chances = probability_best([Arm("A", 50, 1), Arm("B", 50_000, 40_000)])
    assert chances["B"] == pytest.approx(1.0, abs=1e-12)
    assert chances["A"] == pytest.approx(0.0, abs=1e-12)


def test_importing_the_package_loads_neither_numpy_nor_scipy() -> None:
    # Every web and worker process imports the application whole; only A/B results need them.
    code = "import sys, nurture.experiments; print('numpy' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_narrow_and_wide_arms_together_sum_to_one_with_no_gaps() -> None:
    # Found by a random search: a subnormal node made the inverse beta NaN for the third arm.
    arms = [Arm("A", 28865, 23040), Arm("B", 6, 2), Arm("C", 2098, 263), Arm("D", 3, 0)]
    chances = probability_best(arms)
    assert all(0 <= p <= 1 for p in chances.values())
    assert sum(chances.values()) == pytest.approx(1, abs=1e-9)
