"""Which variant of an A/B-tested step a lead gets (issue 15 §3): pure, no database.

The choice is a function of the lead, the sequence and the step only, so planning the step
again (a reschedule, a re-entry, another process) always gives the lead the same variant, and
the simulator shows the one the planner will choose. Python's ``hash()`` is salted per process
(PYTHONHASHSEED), so it is no use here: SHA-256 is the same everywhere, for ever.
"""

from __future__ import annotations

import hashlib
import uuid

from nurture.program.sequences import Step, Variant

# The digest's first 53 bits, read as a fraction of 2**53: exactly representable as a float
# (so the point is always below 1), and even to far better than any sample a clinic will see.
_BITS = 53
_SCALE = float(2**_BITS)


def assignment_point(lead_id: uuid.UUID, sequence_key: str, step_key: str) -> float:
    """A number in [0, 1), uniformly spread over leads, fixed for (lead, sequence, step)."""
    digest = hashlib.sha256(f"{lead_id}:{sequence_key}:{step_key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - _BITS)) / _SCALE


def assign(lead_id: uuid.UUID, sequence_key: str, step: Step) -> Variant | None:
    """The lead's variant of ``step``; None for a step without variants.

    The weights divide [0, 1) into consecutive slices in the order the file lists the
    variants; the lead gets the slice its assignment point falls in."""
    if step.variants is None:
        return None
    total = sum(variant.weight for variant in step.variants)
    point = assignment_point(lead_id, sequence_key, step.key) * total
    reached = 0
    for variant in step.variants:
        reached += variant.weight
        if point < reached:
            return variant
    return step.variants[-1]  # unreachable (point < 1); keeps the type honest


__all__ = ["assign", "assignment_point"]
