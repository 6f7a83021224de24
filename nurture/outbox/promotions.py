"""A promoted A/B winner (issue 15 §3): from the next planning on, the step sends its template.

A promotion was built when sequences were only files, which a button on the sequence page could
not rewrite. So it lives in the database as the one thing every staff action already writes:
its audit event, ``experiment.promoted``, whose details name the sequence, the step, the variant
and its template. The latest such event for a step is its promotion; the audit log is
append-only, so who promoted what and when is never lost. Sequences are versioned in the
database now (``nurture.program.sequence_store``): a promotion could instead publish a version
whose step names the winner, with the studio's history, diff and rollback; not done yet.

A promotion holds only while the step still has that variant with that template: once someone
edits the test in the file (a new variant, another template) the old promotion no longer
applies and the new test runs, rather than a winner of a different test silently overriding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import AuditEvent
from nurture.program.sequences import Sequence, Step, Variant

PROMOTED = "experiment.promoted"
AUTO = "auto"  # the actor of a promotion made by the policy (experiments.auto_promote)


@dataclass(frozen=True)
class Promotion:
    step_key: str
    variant: str
    template: str
    actor: str
    at: datetime

    def applies_to(self, step: Step) -> Variant | None:
        """The promoted variant if ``step`` still has it, with the same template; else None."""
        variant = step.variant(self.variant)
        return variant if variant is not None and variant.template == self.template else None


def has_experiments(sequence: Sequence) -> bool:
    return any(step.variants is not None for step in sequence.steps)


def promotions(session: Session, sequence_key: str) -> dict[str, Promotion]:
    """The latest promotion of each step of the sequence, by step key."""
    rows = session.execute(
        select(AuditEvent.actor, AuditEvent.occurred_at, AuditEvent.details)
        # A promotion concerns no lead; saying so lets PostgreSQL use the (lead_id, …) index.
        .where(AuditEvent.lead_id.is_(None), AuditEvent.action == PROMOTED)
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    found: dict[str, Promotion] = {}
    for actor, occurred_at, details in rows:
        if details.get("sequence") != sequence_key:
            continue
        step_key, variant, template = (details.get(k) for k in ("step", "variant", "template"))
        if isinstance(step_key, str) and isinstance(variant, str) and isinstance(template, str):
            found[step_key] = Promotion(step_key, variant, template, actor, occurred_at)
    return found


def record_promotion(
    session: Session,
    sequence: Sequence,
    step: Step,
    variant: Variant,
    *,
    actor: str,
    evidence: dict[str, object],
) -> None:
    """Write the promotion (its audit event) into the caller's transaction."""
    audit.record(
        session,
        actor=actor,
        action=PROMOTED,
        details={
            "sequence": sequence.key,
            "version": sequence.version,
            "step": step.key,
            "variant": variant.name,
            "template": variant.template,
            **evidence,
        },
    )


__all__ = ["AUTO", "PROMOTED", "Promotion", "has_experiments", "promotions", "record_promotion"]
