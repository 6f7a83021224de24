"""The statistics of an A/B test: each arm's booking rate as a Beta posterior, the credible
interval of that rate, and the probability that each arm has the highest rate.

Pure functions over plain data, on SciPy's incomplete beta function and its inverse (the
Cephes/Boost implementations every statistics package uses); nothing from the rest of the
application. Every result is deterministic: there is no sampling, so the page, the command line
and a test get the same numbers from the same counts. The work is a fixed number of vectorised
evaluations whatever the counts, so no pair of arms can make a page wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MIN_ARMS = 2
MAX_ARMS = 4


# NumPy and SciPy are imported on first use, not with the module: every process imports the
# application whole, and only the page and the beat task that judge an A/B test need them (they
# would add about 30 MB to every idle web and worker process).


@cache
def _edges() -> NDArray[np.float64]:
    """Panel edges on [0, 1] in probability: shrinking geometrically towards both ends (where a
    far-apart pair of arms turns the integrand from 0 to 1 within a sliver of probability),
    evenly spaced in between."""
    import numpy as np

    ends = np.array([10.0**-k for k in range(14, 1, -1)])
    return np.unique(np.concatenate([[0.0], ends, np.linspace(0.01, 0.99, 50), 1 - ends, [1.0]]))


def _rule(edges: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """16-point Gauss-Legendre nodes and weights on each panel between ``edges``."""
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(16)
    low, high = edges[:-1, None], edges[1:, None]
    return (low + (high - low) * (x + 1) / 2).ravel(), ((high - low) * w / 2).ravel()


@dataclass(frozen=True)
class Arm:
    """One variant of an A/B test: how many leads it reached and how many of those booked.

    The booking rate's posterior is Beta(1 + booked, 1 + reached - booked): the binomial
    likelihood of the counts times a uniform prior, Beta(1, 1). The uniform prior says that
    before any lead is reached every rate from 0 to 1 is as plausible as any other, so it favours
    no variant, lets the counts decide, and still gives an arm with no leads a proper posterior
    (no special case for an empty arm). It weighs as much as two leads, nothing next to the
    hundreds an arm needs before a winner is called.
    """

    name: str
    reached: int
    booked: int

    def __post_init__(self) -> None:
        name: object = self.name
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an arm needs a name (a non-empty text), got {name!r}")
        counts: tuple[tuple[str, object], ...] = (
            ("reached", self.reached),
            ("booked", self.booked),
        )
        for field, value in counts:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"arm {name!r}: {field} must be a whole number, got {value!r}")
        if self.reached < 0:
            raise ValueError(f"arm {name!r}: reached cannot be negative, got {self.reached}")
        if not 0 <= self.booked <= self.reached:
            raise ValueError(
                f"arm {name!r}: booked must be between 0 and reached ({self.reached}),"
                f" got {self.booked}"
            )

    @property
    def alpha(self) -> int:
        """The posterior's first parameter: one plus the bookings."""
        return 1 + self.booked

    @property
    def beta(self) -> int:
        """The posterior's second parameter: one plus the leads who did not book."""
        return 1 + self.reached - self.booked


def check_arms(arms: Sequence[Arm]) -> None:
    """Raise ValueError unless `arms` are two to four Arm values with distinct names."""
    if not MIN_ARMS <= len(arms) <= MAX_ARMS:
        raise ValueError(f"an A/B test compares {MIN_ARMS} to {MAX_ARMS} arms, got {len(arms)}")
    seen: set[str] = set()
    for arm in arms:
        if not isinstance(arm, Arm):
            raise ValueError(f"expected an Arm, got {arm!r}")
        if arm.name in seen:
            raise ValueError(f"two arms are named {arm.name!r}; each arm needs its own name")
        seen.add(arm.name)


def posterior_cdf(arm: Arm, rate: float) -> float:
    """P(the arm's booking rate <= `rate`) under its posterior."""
    from scipy import special

    return float(special.betainc(arm.alpha, arm.beta, min(max(rate, 0.0), 1.0)))


def posterior_quantile(arm: Arm, q: float) -> float:
    """The rate below which the arm's posterior puts probability `q` (0 <= q <= 1)."""
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile's probability must be between 0 and 1, got {q!r}")
    from scipy import special

    return float(special.betaincinv(arm.alpha, arm.beta, q))


def credible_interval(arm: Arm, mass: float = 0.95) -> tuple[float, float]:
    """The equal-tailed interval holding `mass` of the arm's posterior booking rate: as much
    probability below `low` as above `high`."""
    if not 0 < mass < 1:
        raise ValueError(f"a credible interval's mass must be between 0 and 1, got {mass!r}")
    tail = (1 - mass) / 2
    return posterior_quantile(arm, tail), posterior_quantile(arm, 1 - tail)


def probability_best(arms: Sequence[Arm]) -> dict[str, float]:
    """For each arm, the posterior probability that its booking rate is the highest.

    P(arm i is best) = the integral of f_i(x) * prod_{j != i} F_j(x) dx, with f the posterior
    densities and F their distribution functions. Substituting u = F_i(x) leaves
    the integral over u in [0, 1] of prod_{j != i} F_j(F_i^-1(u)): a bounded, increasing
    integrand with no density peak to find, however narrow the posteriors are. In the order of
    `arms`; the values sum to 1 within 1e-9.
    """
    import numpy as np
    from scipy import special

    check_arms(arms)
    edges = _edges()
    chances = []
    for i, mine in enumerate(arms):
        # Where another arm's distribution function climbs, the integrand climbs: that arm's
        # own panel edges, carried into this arm's u, become edges here too, so a narrow arm
        # beside a wide one is resolved however sharp its step (in u) is.
        others = [other for j, other in enumerate(arms) if j != i]
        carried = [
            special.betainc(mine.alpha, mine.beta, special.betaincinv(o.alpha, o.beta, edges))
            for o in others
        ]
        merged = np.concatenate([edges, *carried])
        # The inverse of a very narrow posterior can be NaN in its farthest tail: drop those.
        merged = np.unique(np.clip(merged[np.isfinite(merged)], 0.0, 1.0))
        nodes, weights = _rule(merged)
        # A subnormal u makes the inverse NaN; below 1e-300 the integrand adds nothing anyway.
        rates = special.betaincinv(mine.alpha, mine.beta, np.maximum(nodes, 1e-300))
        below = np.ones_like(rates)
        for other in others:
            below *= special.betainc(other.alpha, other.beta, rates)
        chances.append(float(np.dot(weights, below)))
    return {arm.name: chance for arm, chance in zip(arms, chances, strict=True)}
