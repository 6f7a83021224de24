"""Whether an A/B test has a winner yet, and why (or why not) in words for the page."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from nurture.experiments.bayes import Arm, check_arms, credible_interval, probability_best

# Probabilities this close count as equal: integration noise must not pick a "best" of two twins.
_TIE = 1e-9


@dataclass(frozen=True)
class Decision:
    winner: str | None
    probabilities: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    reason: str


def decide(arms: Sequence[Arm], *, threshold: float = 0.95, min_per_arm: int = 200) -> Decision:
    """Call a winner when one arm is best with probability >= `threshold` and every arm has
    reached at least `min_per_arm` leads; the probabilities and 95 % intervals come either way."""
    check_arms(arms)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValueError(f"threshold must be a probability, got {threshold!r}")
    # Above 1/2 so that at most one arm can reach it; below 1 since no posterior is certain.
    if not 0.5 < threshold < 1:
        raise ValueError(f"threshold must be above 0.5 and below 1, got {threshold!r}")
    if isinstance(min_per_arm, bool) or not isinstance(min_per_arm, int) or min_per_arm < 0:
        raise ValueError(f"min_per_arm must be a whole number of leads, got {min_per_arm!r}")
    probabilities = probability_best(arms)
    intervals = {arm.name: credible_interval(arm) for arm in arms}
    best_probability = max(probabilities.values())
    leaders = [name for name, p in probabilities.items() if best_probability - p <= _TIE]
    smallest = min(arms, key=lambda arm: arm.reached)  # the first of equals, in the given order
    winner: str | None = None
    if smallest.reached < min_per_arm:
        # Checked first: a tiny arm can look certain (or certainly bad) by chance.
        noun = "lead" if min_per_arm == 1 else "leads"
        reason = (
            f"not enough data: variant {smallest.name} has {smallest.reached}"
            f" of the {min_per_arm} {noun} needed"
        )
    elif len(leaders) == 1 and best_probability >= threshold:
        winner = leaders[0]
        reason = f"{winner} is best with {_percent(best_probability)} probability"
    else:
        if len(leaders) == 1:
            best = f"{leaders[0]} at"
        else:
            best = f"{', '.join(leaders[:-1])} and {leaders[-1]} tied at"
        reason = (
            f"no variant is ahead with {_threshold_percent(threshold)} probability yet"
            f" (best: {best} {_percent(best_probability)})"
        )
    return Decision(
        winner=winner,
        probabilities=MappingProxyType(dict(probabilities)),
        intervals=MappingProxyType(intervals),
        reason=reason,
    )


def _percent(probability: float) -> str:
    """One decimal, rounded DOWN, so 94.96 % reads 94.9 % next to "not ahead with 95 %" and the
    page never claims a certainty it has not got."""
    if probability > 0.999:
        return "more than 99.9 %"
    tenths = math.floor(probability * 1000 + 1e-6)  # the 1e-6: 0.972 * 1000 is 971.999…
    return f"{tenths / 10:.1f} %"


def _threshold_percent(threshold: float) -> str:
    return f"{round(threshold * 100, 6):g} %"
