"""A/B variants: the statistics that decide whether one variant books more consults.

Pure (the standard library, and SciPy's beta functions on first use); nothing from the rest of
nurture."""

from nurture.experiments.bayes import (
    Arm,
    credible_interval,
    posterior_cdf,
    posterior_quantile,
    probability_best,
)
from nurture.experiments.decision import Decision, decide

__all__ = [
    "Arm",
    "Decision",
    "credible_interval",
    "decide",
    "posterior_cdf",
    "posterior_quantile",
    "probability_best",
]
