"""Compliance rule 12: before a text on an old consent, ask whether the number changed hands.

Numbers are recycled: a carrier gives a disconnected number to someone else after 45 days. A
text on a consent given a year ago may reach a stranger, about a ketamine clinic. So a text to a
lead whose SMS consent is older than ``policy.reassigned_numbers.check_after`` first asks the FCC
Reassigned Numbers Database (through Twilio Lookup v2) with the consent date:

- "yes" (disconnected since): the SMS consent is revoked (source ``reassigned_number``) and the
  text is skipped with that reason; the lead's other pending texts are cancelled with it;
- "no": the text goes, and the recorded answer is the safe harbor's evidence;
- "no data": the text goes, recorded (there is no safe harbor for it);
- no answer (a timeout, a 5xx): the text waits ``retry_after`` and asks again; never sent blind,
  never revoked on a guess.

The question is a network call, so the batch asks it between its look and take transactions
(:mod:`nurture.outbox.send`): this module reads (:func:`questions`, in the look transaction),
asks (:func:`ask_all`, no transaction) and records (:func:`record`, in the take transaction).
Every answer is a row of ``reassigned_checks``, which is also the cache: an answer for the same
number and consent date younger than ``cache_for`` is not asked again.

Nothing is asked for staff alerts (not the lead's number), for numbers outside the US (the
database covers US numbers only) or when the SMS transport cannot ask (the embedded file
outbox): those texts go as on a "no data", without a row, since nothing was asked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture import consent
from nurture.config.policy import Policy
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Lead,
    Message,
    Purpose,
    ReassignedAnswer,
    ReassignedCheck,
)
from nurture.outbox import withdrawals
from nurture.program import windows
from nurture.transports import ReassignedLookup, SmsTransport

log = logging.getLogger(__name__)

SKIP_REASON = (
    "the number changed hands since the consent (FCC Reassigned Numbers Database): "
    "texts to it stopped"
)


@dataclass(frozen=True)
class Question:
    """Has ``phone`` been disconnected since ``consent_date``? (For one text to one lead.)"""

    lead_id: uuid.UUID
    phone: str
    consent_date: date

    @property
    def key(self) -> tuple[str, date]:
        return self.phone, self.consent_date


@dataclass(frozen=True)
class Finding:
    """What asking said: an answer, or why there was none (``problem``)."""

    question: Question
    answer: ReassignedAnswer | None
    problem: str | None = None


@dataclass(frozen=True)
class Check:
    """A text that must be checked: its question, and the answer already known (the cache)."""

    question: Question
    cached: ReassignedAnswer | None


def questions(
    session: Session,
    messages: Sequence[Message],
    leads: dict[uuid.UUID, Lead],
    *,
    sms: SmsTransport,
    policy: Policy,
    now: datetime,
) -> dict[int, Check]:
    """For each text that must be checked: its cached answer, or the question to ask (in the
    look transaction). Texts not in the result need no check."""
    if not isinstance(sms, ReassignedLookup):
        return {}  # the embedded outbox: nothing to ask
    texts = [m for m in messages if _to_the_leads_number(m)]
    if not texts:
        return {}
    granted = _sms_granted_at(session, {m.lead_id for m in texts})
    limit = now - policy.reassigned_numbers.check_after
    asked: dict[int, Question] = {}
    for message in texts:
        lead = leads[message.lead_id]
        since = _consent_since(granted.get(lead.id, {}), message.purpose)
        if since is None or since > limit or windows.phone_region(lead.phone) != "US":
            continue
        assert lead.phone is not None
        asked[message.id] = Question(lead.id, lead.phone, since.date())
    cached = _cached(session, list(asked.values()), since=now - policy.reassigned_numbers.cache_for)
    return {mid: Check(question, cached.get(question.key)) for mid, question in asked.items()}


def ask_all(sms: SmsTransport, asked: Sequence[Question], *, parallel: int) -> list[Finding]:
    """Ask each distinct question once, a few at a time, with no transaction open."""
    assert isinstance(sms, ReassignedLookup)
    distinct = list({question.key: question for question in asked}.values())
    if not distinct:
        return []

    def one(question: Question) -> Finding:
        try:
            said = sms.reassigned_since(question.phone, question.consent_date)
        except LookupError as error:
            return Finding(question, None, problem=str(error))
        return Finding(question, ReassignedAnswer(said))

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(distinct)))) as pool:
        found = {f.question.key: f for f in pool.map(one, distinct)}
    return [found[question.key] for question in asked]


def record(session: Session, findings: Sequence[Finding], *, now: datetime) -> None:
    """Keep each answer (once per question), with an audit entry on the lead's record."""
    seen: set[tuple[str, date]] = set()
    for finding in findings:
        question = finding.question
        if finding.answer is None or question.key in seen:
            continue
        seen.add(question.key)
        session.add(
            ReassignedCheck(
                lead_id=question.lead_id,
                phone=question.phone,
                consent_date=question.consent_date,
                answer=finding.answer,
                checked_at=now,
            )
        )
        audit.record(
            session,
            actor=audit.WORKER,
            action="lead.reassigned_number_checked",
            lead_id=question.lead_id,
            details={
                "answer": finding.answer.value,
                "consent_date": question.consent_date.isoformat(),
                "safe_harbor": finding.answer is ReassignedAnswer.NO,
            },
        )


def revoke(
    session: Session, lead_id: uuid.UUID, consent_date: date, *, message_id: int, now: datetime
) -> None:
    """The number is someone else's now: revoke its SMS consent (once) and cancel its texts."""
    if not any(ch is Channel.SMS for ch, _ in consent.current(session, lead_id).granted):
        return  # another batch got there first
    withdrawals.revoke_sms(
        session,
        lead_id,
        source=ConsentSource.REASSIGNED_NUMBER,
        evidence={
            "database": "FCC Reassigned Numbers Database (Twilio Lookup v2)",
            "answer": ReassignedAnswer.YES.value,
            "consent_date": consent_date.isoformat(),
            "message_id": message_id,
        },
        actor=audit.WORKER,
        now=now,
    )
    log.warning("lead %s: the number was reassigned; SMS consent revoked", lead_id)


def _to_the_leads_number(message: Message) -> bool:
    # Staff alerts go to staff numbers (their recipient): never checked against the lead.
    return (
        message.channel is Channel.SMS
        and message.purpose is not Purpose.ALERT
        and message.recipient is None
    )


def _sms_granted_at(
    session: Session, lead_ids: set[uuid.UUID]
) -> dict[uuid.UUID, dict[Purpose, datetime]]:
    """When each lead last granted each SMS purpose (one query for the batch)."""
    latest: dict[uuid.UUID, dict[Purpose, datetime]] = {}
    for lead_id, purpose, at in session.execute(
        select(ConsentEvent.lead_id, ConsentEvent.purpose, func.max(ConsentEvent.occurred_at))
        .where(
            ConsentEvent.lead_id.in_(lead_ids),
            ConsentEvent.channel == Channel.SMS,
            ConsentEvent.action == ConsentAction.GRANTED,
        )
        .group_by(ConsentEvent.lead_id, ConsentEvent.purpose)
    ):
        latest.setdefault(lead_id, {})[purpose] = at
    return latest


def _consent_since(granted: dict[Purpose, datetime], purpose: Purpose) -> datetime | None:
    """The consent a text rests on: its purpose's latest grant (the opt-in confirmation
    confirms either purpose: the latest of them)."""
    if purpose is Purpose.OPTIN:
        return max(granted.values(), default=None)
    return granted.get(purpose)


def _cached(
    session: Session, asked: list[Question], *, since: datetime
) -> dict[tuple[str, date], ReassignedAnswer]:
    """The latest answer younger than ``since`` for each question's number and consent date."""
    if not asked:
        return {}
    rows = session.execute(
        select(ReassignedCheck.phone, ReassignedCheck.consent_date, ReassignedCheck.answer)
        .where(
            ReassignedCheck.phone.in_({q.phone for q in asked}),
            ReassignedCheck.checked_at > since,
        )
        .order_by(ReassignedCheck.checked_at, ReassignedCheck.id)
    ).all()
    return {(phone, day): answer for phone, day, answer in rows}  # the latest wins
