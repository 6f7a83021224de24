"""The results of a step's A/B test, the decision on them, and promoting the winner
(issue 15 §3).

For each variant: how many leads it reached (a message of that variant was sent or delivered),
how many of them booked a consult within the attribution window after it (the step's channel's
window in policy.attribution), and how many revoked consent on that channel within the same
window. The decision is the statistics package's (a Bayesian probability of being best, with a
minimum number of leads in every arm, both from policy.experiments).

Only rows planned at random count: a row records its variant only while the test runs (a
promoted winner's rows record none), and a variant whose template was changed in the file
counts only the rows that sent its current template.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.config.policy import Policy
from nurture.db.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    LeadEvent,
    Message,
    MessageStatus,
)
from nurture.experiments import Arm, Decision, decide
from nurture.outbox import promotions
from nurture.program.sequences import Catalog, LifecycleEvent, Sequence, Step, Variant

REACHED = (MessageStatus.SENT, MessageStatus.DELIVERED)
# A bounce revokes an address that does not work: no one chose to leave because of a message.
NOT_A_CHOICE = (ConsentSource.BOUNCE,)


@dataclass(frozen=True)
class ArmResult:
    variant: Variant
    reached: int
    booked: int
    opted_out: int
    probability_best: float | None
    interval: tuple[float, float] | None  # the 95 % credible interval of the booking rate

    @property
    def rate(self) -> float | None:
        return self.booked / self.reached if self.reached else None


@dataclass(frozen=True)
class ExperimentResult:
    sequence: Sequence
    step: Step
    window: timedelta
    arms: list[ArmResult]
    decision: Decision
    promotion: promotions.Promotion | None  # the promotion in force, if any

    @property
    def winner(self) -> Variant | None:
        return self.step.variant(self.decision.winner) if self.decision.winner else None


class PromotionRefusedError(ValueError):
    """Promoting was asked for when it may not happen; the message says why."""


def format_probability(probability: float | None) -> str:
    """A probability for the page, never claiming a certainty the numbers have not got:
    "more than 99.9 %" rather than "100.0 %", "less than 0.1 %" rather than "0.0 %"."""
    if probability is None:
        return "\u2013"
    if probability > 0.999:
        return "more than 99.9 %"
    if probability < 0.001:
        return "less than 0.1 %"
    return f"{probability * 100:.1f} %"


def attribution_window(policy: Policy, step: Step) -> timedelta:
    window: timedelta = getattr(policy.attribution, step.channel.value)
    return window


def _within(times: list[datetime], after: datetime, window: timedelta) -> bool:
    """Is any of the sorted ``times`` in [after, after + window]?"""
    index = bisect.bisect_left(times, after)
    return index < len(times) and times[index] <= after + window


def _after(
    events: dict[uuid.UUID, list[datetime]],
    lead_id: uuid.UUID,
    sent: list[datetime],
    window: timedelta,
) -> bool:
    """Did the lead have an event within the window after any of its messages of the arm?"""
    times = events.get(lead_id, [])
    return any(_within(times, at, window) for at in sent)


def _times_by_lead(rows: Iterable[tuple[uuid.UUID, datetime]]) -> dict[uuid.UUID, list[datetime]]:
    found: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for lead_id, at in rows:
        found[lead_id].append(at)
    for times in found.values():
        times.sort()
    return found


def experiment_result(
    session: Session,
    sequence: Sequence,
    step: Step,
    policy: Policy,
    promoted: dict[str, promotions.Promotion] | None = None,
) -> ExperimentResult:
    """Count each variant's arm and decide. ``promoted``: the sequence's promotions, if the
    caller has them (else read here)."""
    assert step.variants is not None, "only a step with variants is an experiment"
    window = attribution_window(policy, step)
    current = {variant.name: variant.template for variant in step.variants}
    of_the_arms = (
        Message.sequence_key == sequence.key,
        Message.step_key == step.key,
        Message.variant.in_(current),
        Message.status.in_(REACHED),
        Message.sent_at.is_not(None),
    )
    sent = select(Message.lead_id, Message.variant, Message.template_key, Message.sent_at).where(
        *of_the_arms
    )
    sends: dict[str, dict[uuid.UUID, list[datetime]]] = {name: {} for name in current}
    for lead_id, name, template, sent_at in session.execute(sent):
        if name is not None and sent_at is not None and current.get(name) == template:
            sends[name].setdefault(lead_id, []).append(sent_at)
    leads_sent_to = select(Message.lead_id).where(*of_the_arms).distinct()
    bookings = _times_by_lead(
        session.execute(
            select(LeadEvent.lead_id, LeadEvent.occurred_at).where(
                LeadEvent.type == LifecycleEvent.CONSULT_BOOKED.value,
                LeadEvent.lead_id.in_(leads_sent_to),
            )
        ).all()
    )
    revocations = _times_by_lead(
        session.execute(
            select(ConsentEvent.lead_id, ConsentEvent.occurred_at).where(
                ConsentEvent.channel == step.channel,
                ConsentEvent.action == ConsentAction.REVOKED,
                ConsentEvent.source.not_in(NOT_A_CHOICE),
                ConsentEvent.lead_id.in_(leads_sent_to),
            )
        ).all()
    )
    counts = []
    for variant in step.variants:
        leads = sends[variant.name]
        booked = sum(
            1 for lead, sent_at in leads.items() if _after(bookings, lead, sent_at, window)
        )
        opted_out = sum(
            1 for lead, sent_at in leads.items() if _after(revocations, lead, sent_at, window)
        )
        counts.append((variant, len(leads), booked, opted_out))
    decision = decide(
        [Arm(variant.name, reached, booked) for variant, reached, booked, _ in counts],
        threshold=policy.experiments.threshold,
        min_per_arm=policy.experiments.min_per_arm,
    )
    arms = [
        ArmResult(
            variant,
            reached,
            booked,
            opted_out,
            decision.probabilities.get(variant.name),
            decision.intervals.get(variant.name),
        )
        for variant, reached, booked, opted_out in counts
    ]
    if promoted is None:
        promoted = promotions.promotions(session, sequence.key)
    promotion = promoted.get(step.key)
    in_force = promotion if promotion is not None and promotion.applies_to(step) else None
    return ExperimentResult(sequence, step, window, arms, decision, in_force)


def sequence_results(
    session: Session, sequence: Sequence, policy: Policy
) -> list[ExperimentResult]:
    """Every A/B-tested step of the sequence, in step order."""
    if not promotions.has_experiments(sequence):
        return []
    promoted = promotions.promotions(session, sequence.key)
    return [
        experiment_result(session, sequence, step, policy, promoted)
        for step in sequence.steps
        if step.variants is not None
    ]


def promote(
    session: Session,
    sequence: Sequence,
    step_key: str,
    variant_name: str,
    *,
    policy: Policy,
    actor: str,
) -> ExperimentResult:
    """Promote the called winner of a step's test, in the caller's transaction (audited as
    ``experiment.promoted``); refuses a variant the numbers have not called the winner."""
    step = next((s for s in sequence.steps if s.key == step_key), None)
    if step is None or step.variants is None:
        raise PromotionRefusedError(f"{sequence.key} has no A/B-tested step {step_key[:64]!r}")
    result = experiment_result(session, sequence, step, policy)
    if result.promotion is not None:
        raise PromotionRefusedError(
            f"{step.key}: variant {result.promotion.variant} is already promoted"
        )
    if result.winner is None:
        raise PromotionRefusedError(
            f"{step.key}: no winner is called yet ({result.decision.reason})"
        )
    if result.winner.name != variant_name:
        raise PromotionRefusedError(
            f"{step.key}: the winner is variant {result.winner.name}, not {variant_name[:40]!r}"
        )
    promotions.record_promotion(
        session, sequence, step, result.winner, actor=actor, evidence=_evidence(result.arms)
    )
    return result


def _evidence(arms: Seq[ArmResult]) -> dict[str, object]:
    """The numbers the promotion was made on, kept with it in the audit log."""
    return {
        "arms": {
            arm.variant.name: {
                "reached": arm.reached,
                "booked": arm.booked,
                "opted_out": arm.opted_out,
                "probability_best": arm.probability_best,
            }
            for arm in arms
        }
    }


def as_dict(result: ExperimentResult) -> dict[str, Any]:
    """The numbers of one test as plain data (`nurture sequences results --json`)."""
    return {
        "sequence": result.sequence.key,
        "step": result.step.key,
        "window_seconds": int(result.window.total_seconds()),
        "arms": [
            {
                "variant": arm.variant.name,
                "template": arm.variant.template,
                "reached": arm.reached,
                "booked": arm.booked,
                "opted_out": arm.opted_out,
                "probability_best": arm.probability_best,
                "interval": list(arm.interval) if arm.interval else None,
            }
            for arm in result.arms
        ],
        "winner": result.decision.winner,
        "reason": result.decision.reason,
        "promoted": result.promotion.variant if result.promotion else None,
    }


def auto_promote(session: Session, catalog: Catalog, policy: Policy) -> list[tuple[str, str, str]]:
    """With ``experiments.auto_promote``: promote every called winner not promoted yet (actor
    "auto"). Returns (sequence, step, variant) of each promotion made."""
    if not policy.experiments.auto_promote:
        return []
    made = []
    for sequence in catalog.by_key.values():
        for result in sequence_results(session, sequence, policy):
            if result.promotion is None and result.winner is not None:
                promotions.record_promotion(
                    session,
                    sequence,
                    result.step,
                    result.winner,
                    actor=promotions.AUTO,
                    evidence=_evidence(result.arms),
                )
                made.append((sequence.key, result.step.key, result.winner.name))
    return made


__all__ = [
    "ArmResult",
    "ExperimentResult",
    "PromotionRefusedError",
    "as_dict",
    "attribution_window",
    "auto_promote",
    "experiment_result",
    "format_probability",
    "promote",
    "sequence_results",
]
