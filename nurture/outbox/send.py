"""Sending a batch of queued rows of one channel: each at most once, the provider calls overlapped.

A send task carries a few rows (:data:`BATCH_SIZE`). Each row keeps every guarantee a row sent
alone had; what the batch shares is the transactions and the waiting:

1. **look** (one short transaction): the row must still be `queued`; its gates (consent, quiet
   hours, caps, pauses, the step's rules) and its template version are read. A row the gates
   hold back is settled here, skipped or back to the schedule.
2. texts on an old consent **ask** whether the number changed hands (compliance rule 12,
   :mod:`nurture.outbox.reassigned`; a network call, no transaction); then their **turn** in the
   sender's throttle (Redis, no transaction), then **render**, outside any transaction (a
   template may take its whole render budget).
3. **take** (one transaction): the caps again under the lead's lock (taken in one order, so two
   batches cannot deadlock), then the conditional UPDATE `queued → sending` with what the row
   will say, committed before any provider sees anything. A second delivery of the same task,
   or a STOP meanwhile, finds the row no longer `queued` and does nothing with it.
4. **call** the providers, up to `SendPath.parallel_calls` at once, no transaction open.
5. **settle** (one transaction): each outcome through the guarded move, its attempt row, the
   reports that beat the answer, its audit entry.

A crash between 3 and 5 leaves the batch's taken rows `sending`: the reaper makes them
`unknown` (they may have left), never resends them. That is the batch's price: a crash costs
up to :data:`BATCH_SIZE` rows to settle (by the reconciler or by hand) instead of one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from nurture import clock
from nurture.content import tracked_links
from nurture.content.compose import RenderedContent
from nurture.content.rendering import RenderContext, RenderError
from nurture.content.template_store import TemplateNotFoundError, TemplateRecord
from nurture.db import audit
from nurture.db.models import Channel, Lead, Message, MessageStatus, Purpose, ReassignedAnswer
from nurture.outbox import (
    gates,
    provider_calls,
    provider_errors,
    reassigned,
    reports,
    settle,
    states,
)
from nurture.outbox.provider_calls import Answer, Outgoing, unsubscribe_headers
from nurture.outbox.retry import retry_delay
from nurture.outbox.send_path import SendPath
from nurture.outbox.settle import QUEUED, Settled
from nurture.outbox.states import MESSAGES
from nurture.outbox.throttle import SenderThrottle, Slot
from nurture.transports import (
    Attachment,
    DeliveryOutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    TransientDeliveryError,
    calendar_invite,
)

log = logging.getLogger(__name__)

# Rows per send task. More rows share more of the fixed cost (a task, three commits) and
# wait on more provider calls at once; a worker killed mid-batch leaves up to this many rows
# `unknown` instead of one. See docs/benchmarks.md, "Send path: profile before/after".
BATCH_SIZE = 16
SLOT = "throttle_slot"  # in message.context: the moment (Redis clock) reserved for this text
TURN_EARLY = 0.05  # seconds: close enough to its slot to go

Outcomes = dict[int, MessageStatus | None]  # None: the row was not ours (any more)


@dataclass(frozen=True)
class _Looked:
    message: Message
    lead: Lead
    record: TemplateRecord
    question: reassigned.Question | None = None  # to ask before it goes (rule 12)
    finding: reassigned.Finding | None = None  # what asking said: recorded when it is taken


@dataclass(frozen=True)
class _Draft:
    message: Message
    lead: Lead
    context: RenderContext | None = None
    rendered: RenderedContent | None = None
    problem: str | None = None  # the render error: the row fails, for this template
    turn: Slot | None = None  # a text whose slot is still to come: back to the schedule
    held: gates.Skip | gates.Defer | None = None  # the number check stops it (rule 12)
    finding: reassigned.Finding | None = None
    invite: bool = False  # the template asks for the consultation's calendar file
    links: list[str] | None = None  # the original links behind its /r/ links (click tracking)


@dataclass(frozen=True)
class _Taken:
    message: Message
    outgoing: Outgoing
    # This send's attempt number, kept apart from the row: should the settle be rolled back,
    # the row reloads as it is now, perhaps on a later attempt someone else started.
    attempt: int


def send_message(session: Session, message_id: int, path: SendPath) -> MessageStatus | None:
    """Send one queued row at most once (a batch of one); its new status, or None if it was
    not ours."""
    return send_batch(session, [message_id], path)[message_id]


def send_batch(session: Session, message_ids: Sequence[int], path: SendPath) -> Outcomes:
    """Send queued rows of one channel at most once each; every row's new status (None for a
    row that was not `queued`, or that someone else moved meanwhile).

    ``session`` must not have begun its work: each step commits its own transaction."""
    outcomes: Outcomes = dict.fromkeys(message_ids)
    now = clock.utcnow()
    looked = _look(session, message_ids, path, now=now, outcomes=outcomes)
    checked = _ask_about_numbers(looked, path, now=now)
    drafts = [_render(one, path) for one in _take_turns(checked, path)]
    taken = _take(session, drafts, path, now=now, outcomes=outcomes)
    if taken:
        answers = provider_calls.call_all(path, [one.outgoing for one in taken])
        _settle_all(session, taken, answers, path, outcomes=outcomes)
    return outcomes


def _look(
    session: Session, ids: Sequence[int], path: SendPath, *, now: datetime, outcomes: Outcomes
) -> list[_Looked]:
    """The rows still `queued`, their leads, gates and templates, in one short transaction."""
    messages = session.scalars(
        select(Message)
        .where(Message.id.in_(ids), Message.status == MessageStatus.QUEUED)
        .order_by(Message.id)  # every step in id order: two batches lock rows alike
    ).all()
    if len(messages) < len(outcomes):
        gone = sorted(set(ids) - {m.id for m in messages})
        log.info("messages %s are not queued any more; nothing to do", gone)
    lead_ids = {m.lead_id for m in messages}
    leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(lead_ids)))}
    catalog = path.sequences.current()  # committed and cached: a publish shows at the next look
    records: dict[tuple[Channel, str], TemplateRecord | TemplateNotFoundError] = {}
    looked: list[_Looked] = []
    settled: list[Settled | None] = []
    facts = gates.read_facts(session, messages)
    known = reassigned.questions(
        session, messages, leads, sms=path.sms, policy=path.policy, now=now
    )
    # CAN-SPAM: no marketing e-mail with an example postal address where it would reach people.
    placeholder_address = path.email.reaches_inboxes and "address" in path.clinic.placeholders
    for message in messages:
        lead = leads[message.lead_id]
        verdict = gates.check(
            session,
            message,
            lead,
            policy=path.policy,
            clinic_zone=path.clinic.zone,
            now=now,
            catalog=catalog,
            facts=facts,
            placeholder_address=placeholder_address,
        )
        if not isinstance(verdict, gates.Proceed):
            settled.append(_hold(session, message, verdict, now=now, outcomes=outcomes))
            continue
        check = known.get(message.id)
        if check is not None and check.cached is ReassignedAnswer.YES:
            # Answered before, and the consent is still here (a batch that raced this one).
            settled.append(
                _reassigned(session, message, check.question, now=now, outcomes=outcomes)
            )
            continue
        key = (message.channel, message.template_key)
        if key not in records:
            try:
                records[key] = path.writer.templates.get(*key, session=session)
            except TemplateNotFoundError as error:
                records[key] = error
        record = records[key]
        if isinstance(record, TemplateNotFoundError):
            settled.append(_fail_template(session, message, str(record), now, outcomes))
            continue
        # Still to ask, unless the cache answered "no" or "no data" (the text goes).
        ask = check.question if check is not None and check.cached is None else None
        looked.append(_Looked(message, lead, record, question=ask))
    session.commit()
    settle.announce(settled)
    return looked


def _ask_about_numbers(
    looked: list[_Looked], path: SendPath, *, now: datetime
) -> list[_Looked | _Draft]:
    """Texts on an old consent ask whether the number changed hands (no transaction open):
    "yes" and a lookup that failed stop the text here; "no" and "no data" go on."""
    asking = [one for one in looked if one.question is not None]
    if not asking:
        return list(looked)
    questions = [one.question for one in asking if one.question is not None]
    findings = dict(
        zip(
            (one.message.id for one in asking),
            reassigned.ask_all(path.sms, questions, parallel=path.parallel_calls),
            strict=True,
        )
    )
    checked: list[_Looked | _Draft] = []
    for one in looked:
        finding = findings.get(one.message.id)
        if finding is None:
            checked.append(one)
        elif finding.answer is None:
            retry = path.policy.reassigned_numbers.retry_after
            reason = f"the reassigned-numbers check failed, asking again: {finding.problem}"
            later = gates.Defer(now + retry, reason)
            checked.append(_Draft(one.message, one.lead, held=later))
        elif finding.answer is ReassignedAnswer.YES:
            never = gates.Skip(reassigned.SKIP_REASON)
            checked.append(_Draft(one.message, one.lead, held=never, finding=finding))
        else:
            checked.append(replace(one, finding=finding))
    return checked


def _take_turns(looked: list[_Looked | _Draft], path: SendPath) -> list[_Looked | _Draft]:
    """Texts take their slot in the sender's throttle (Redis, outside any transaction)."""
    if path.throttle is None:
        return list(looked)
    turns: list[_Looked | _Draft] = []
    for one in looked:
        turn = None
        if isinstance(one, _Looked) and one.message.channel is Channel.SMS:
            turn = _wait_for_turn(one.message, path.throttle, path.sms_sender)
        if turn is None:
            turns.append(one)
        else:
            turns.append(_Draft(one.message, one.lead, turn=turn, finding=one.finding))
    return turns


def _render(one: _Looked | _Draft, path: SendPath) -> _Draft:
    if isinstance(one, _Draft):
        return one  # waiting its turn: rendered when it goes
    message, lead = one.message, one.lead
    context = path.writer.context(lead, message.purpose, alert=message.context)
    try:
        rendered = path.writer.render_record(one.record, context)
    except RenderError as error:
        return _Draft(message, lead, problem=str(error), finding=one.finding)
    links = None
    if message.sequence_key is not None and message.purpose in tracked_links.TRACKED_PURPOSES:
        # A sequence's messages are what the funnel measures: their links go through /r/.
        rendered, links = path.writer.track(
            rendered,
            context,
            message_id=message.id,
            known=tracked_links.stored_links(message.context),
        )
    return _Draft(
        message,
        lead,
        context=context,
        rendered=rendered,
        finding=one.finding,
        invite=calendar_invite.declares_invite(one.record.source),
        links=links,
    )


def _take(
    session: Session,
    drafts: list[_Draft],
    path: SendPath,
    *,
    now: datetime,
    outcomes: Outcomes,
    together: bool = True,
) -> list[_Taken]:
    """Move the rows that may go from `queued` to `sending`, in one transaction, committed
    before any provider sees them.

    A row under a cap moves at once, so the next row of the batch for the same lead counts it;
    the others move ``together`` in one round trip at the end. Should that find a row someone
    else moved meanwhile, the whole step is rolled back and done again one row at a time."""
    if not drafts:
        return []
    capped = _lock_capped_leads(session, drafts, path)
    taken: list[_Taken] = []
    deferred: list[_Draft] = []
    settled: list[Settled | None] = []
    # What the Reassigned Numbers Database said is kept whatever becomes of each row.
    reassigned.record(session, [d.finding for d in drafts if d.finding is not None], now=now)
    for draft in drafts:
        message, lead = draft.message, draft.lead
        if draft.finding is not None and draft.finding.answer is ReassignedAnswer.YES:
            question = draft.finding.question
            settled.append(_reassigned(session, message, question, now=now, outcomes=outcomes))
            continue
        if draft.held is not None:
            settled.append(_hold(session, message, draft.held, now=now, outcomes=outcomes))
            continue
        if draft.turn is not None:
            settled.append(_wait_turn(session, message, draft.turn, path, now, outcomes))
            continue
        if draft.rendered is None or draft.context is None:
            settled.append(_fail_template(session, message, draft.problem, now, outcomes))
            continue
        if message.id not in capped and together:
            deferred.append(draft)
            continue
        if message.id in capped:
            # The caps again, under the lead's lock: another worker may have started a text to
            # this lead while this one rendered (or an earlier row of this batch just did).
            verdict, claimed_at = gates.check_at_claim(
                session, message, lead, policy=path.policy, clinic_zone=path.clinic.zone
            )
            if not isinstance(verdict, gates.Proceed):
                settled.append(_hold(session, message, verdict, now=claimed_at, outcomes=outcomes))
                continue
        moved = states.move(
            session,
            message.id,
            from_=QUEUED,
            to=MessageStatus.SENDING,
            now=now,
            **STARTING,
            **_says(draft),
        )
        if moved == 1:  # else someone else moved it (a STOP, a second delivery of this task)
            taken.append(_started(draft, path, outcomes))
    if deferred:
        changes = [states.Change(draft.message, now, _says(draft)) for draft in deferred]
        all_taken = states.move_all(
            session, changes, from_=QUEUED, to=MessageStatus.SENDING, **STARTING
        )
        if not all_taken:
            session.rollback()
            log.info("taking %d rows together found one moved; taking each alone", len(drafts))
            outcomes.update(dict.fromkeys(draft.message.id for draft in drafts))
            return _take(session, drafts, path, now=now, outcomes=outcomes, together=False)
        taken += [_started(draft, path, outcomes) for draft in deferred]
    # `sending` is committed before the provider sees anything: after a crash from here on the
    # rows are `sending`, which the reaper turns into `unknown`, never into a second message.
    session.commit()
    settle.announce(settled)
    return sorted(taken, key=lambda one: one.message.id)


# What every row takes as it starts: a new attempt, and no provider id yet (an earlier
# attempt's id is in message_attempts).
STARTING: dict[str, Any] = {"attempts": MESSAGES.c.attempts + 1, "provider_id": None}


def _says(draft: _Draft) -> dict[str, Any]:
    """What a starting row will say, stored with the move that takes it."""
    rendered = draft.rendered
    assert rendered is not None
    return {
        "subject": rendered.subject,
        "body": rendered.text,
        "template_version": rendered.template_version,
        # The turn in the throttle is used up.
        "context": {
            **{k: v for k, v in draft.message.context.items() if k != SLOT},
            # The redirect of /r/{token} goes only to these, the links this message carries.
            **({tracked_links.CONTEXT_KEY: draft.links} if draft.links else {}),
        },
    }


def _started(draft: _Draft, path: SendPath, outcomes: Outcomes) -> _Taken:
    """A row just moved to `sending`, with what its provider will be sent."""
    message = draft.message
    assert draft.rendered is not None
    assert draft.context is not None
    outcomes[message.id] = MessageStatus.SENDING
    # What the row now says, without marking the object dirty (no UPDATE at a flush).
    set_committed_value(message, "attempts", message.attempts + 1)
    unsubscribe = draft.context.links.unsubscribe
    outgoing = _outgoing(
        message, draft.lead, draft.rendered, unsubscribe, path, invite=draft.invite
    )
    return _Taken(message, outgoing, attempt=message.attempts)


def _lock_capped_leads(session: Session, drafts: list[_Draft], path: SendPath) -> set[int]:
    """Lock, in one statement and in id order, the leads whose rows the caps re-check: two
    batches that share leads then wait for each other instead of deadlocking (PostgreSQL; on
    SQLite the transaction's BEGIN IMMEDIATE already serialises writers). The ids of those
    rows."""
    capped = {
        draft.message.id: draft.lead.id
        for draft in drafts
        if draft.rendered is not None
        and gates.schedule_for_lead(
            path.policy, draft.lead, draft.message.channel, draft.message.purpose
        ).capped
    }
    if capped:
        session.execute(
            select(Lead.id)
            .where(Lead.id.in_(set(capped.values())))
            .order_by(Lead.id)
            .with_for_update()
        )
    return set(capped)


def _outgoing(
    message: Message,
    lead: Lead,
    rendered: RenderedContent,
    unsubscribe: str,
    path: SendPath,
    *,
    invite: bool = False,
) -> Outgoing:
    if message.channel is Channel.EMAIL:
        to = message.recipient or lead.email
        assert to is not None
        assert rendered.html is not None
        headers = (
            unsubscribe_headers(unsubscribe, path.unsubscribe_mailto)
            if message.purpose is Purpose.MARKETING
            else {}
        )
        return OutgoingEmail(
            to=to,
            subject=rendered.subject or "",
            text=rendered.text,
            html=rendered.html,
            reference=str(message.id),
            headers=headers,
            attachments=_consult_invite(lead, path) if invite else (),
        )
    to = message.recipient or lead.phone  # a staff alert goes to its recipient
    assert to is not None
    return OutgoingSms(
        to=to,
        body=rendered.text,
        reference=str(message.id),
        # Its reports name this message and attempt, even one that beats the answer.
        status_query=reports.callback_query(message.id, message.attempts),
    )


def _consult_invite(lead: Lead, path: SendPath) -> tuple[Attachment, ...]:
    """The consultation as a calendar file (none while its time is not known). Clinic facts
    only: the short name (no drug or diagnosis word), the address, the phone."""
    if lead.consult_at is None:
        return ()
    clinic = path.clinic
    domain = str(clinic.email).rpartition("@")[2]
    appointment = calendar_invite.Appointment(
        uid=f"consult-{lead.id}@{domain}",  # one event per lead: a new time moves it
        sequence=lead.consult_version,  # bumped whenever the time changes
        start=lead.consult_at,
        end=lead.consult_at + timedelta(minutes=clinic.consult_minutes),
        stamp=clock.utcnow(),
        summary=f"Consultation at {clinic.sms_program_name}",
        location=clinic.address,
        description=f"To change the time, call {clinic.phone} or reply to the e-mail.",
    )
    return (calendar_invite.invite(appointment),)


class _RowMovedMeanwhileError(Exception):
    """A batched move found a row moved meanwhile (a report, ops): settle one at a time."""


def _settle_all(
    session: Session,
    taken: list[_Taken],
    answers: list[Answer],
    path: SendPath,
    *,
    outcomes: Outcomes,
) -> None:
    """Record every call's outcome in one transaction; should that fail (a deadlock with a
    report, a row someone else moved), each on its own, so one row does not keep the others
    `sending`."""
    pairs = list(zip(taken, answers, strict=True))
    try:
        settled = _settle_answers(session, pairs, path, outcomes, together=True)
        session.commit()
    except (DBAPIError, _RowMovedMeanwhileError):
        session.rollback()
        log.info("settling a batch of %d together failed; settling each row alone", len(pairs))
        settled = []
        for one, answer in pairs:
            try:
                settled += _settle_answers(session, [(one, answer)], path, outcomes)
                session.commit()
            except DBAPIError:
                session.rollback()
                outcomes[one.message.id] = MessageStatus.SENDING  # the reaper settles it
                log.exception("message %s: outcome not recorded, left sending", one.message.id)
    settle.announce(settled)


def _settle_answers(
    session: Session,
    pairs: list[tuple[_Taken, Answer]],
    path: SendPath,
    outcomes: Outcomes,
    *,
    together: bool = False,
) -> list[Settled | None]:
    """Each answer's move and every attempt's record. ``together``: the moves in a few
    statements, or :class:`_RowMovedMeanwhileError` if any row was moved meanwhile."""
    moves = [_outcome(session, one, answer, path) for one, answer in pairs]
    settled: list[Settled | None]
    if together:
        trail = audit.Trail()
        all_moved = settle.move_all(session, moves, trail=trail)
        if all_moved is None:
            raise _RowMovedMeanwhileError
        trail.write(session)
        settled = list(all_moved)
    else:
        settled = [
            settle.move(
                session,
                move.message,
                move.status,
                now=move.now,
                expected=move.expected,
                reason=move.reason,
                code=move.code,
                attempt=move.attempt,
                **move.values,
            )
            for move in moves
        ]
    attempts: list[reports.Attempt] = []
    for (one, answer), move, done in zip(pairs, moves, settled, strict=True):
        message = one.message
        outcomes[message.id] = move.status if done is not None else None
        attempts.append(
            reports.Attempt(
                message_id=message.id,
                number=one.attempt,
                outcome=move.status,
                provider_id=answer.provider_id,
                started_at=answer.started_at,
                settled_at=answer.ended_at,
                moved=message if done is not None else None,
            )
        )
    # Recorded whatever became of each row; only a row that moved has its reports applied.
    reports.settle_attempts(session, attempts, path=path)
    return settled


def _outcome(session: Session, taken: _Taken, answer: Answer, path: SendPath) -> settle.Move:
    """The move one answer means (from `sending`, or `unknown` if the reaper guessed, on this
    attempt only)."""
    message, number = taken.message, taken.attempt
    at, error = answer.ended_at, answer.error

    def to(
        status: MessageStatus, reason: str | None, code: str | None, **values: Any
    ) -> settle.Move:
        return settle.Move(
            message, status, at, settle.OWNED, reason, code, attempt=number, values=values
        )

    if error is None:
        return to(MessageStatus.SENT, None, None, provider_id=answer.provider_id, sent_at=at)
    if isinstance(error, TransientDeliveryError):
        if number >= path.max_attempts:
            reason = f"gave up after {number} attempts: {error.reason}"
            return to(MessageStatus.FAILED, reason, error.code)
        due_at = at + retry_delay(number, base=path.retry_base)
        return to(MessageStatus.SCHEDULED, error.reason, error.code, due_at=due_at)
    if isinstance(error, PermanentDeliveryError):
        if message.channel is Channel.SMS and error.code and error.code.isdecimal():
            # The provider's code says more than "failed": an opt-out held by the carrier, a
            # landline, a filtered sender. Its consequences stand even if someone settled the
            # row meanwhile (ops marked it sent, say): they are facts about the number.
            provider_errors.apply_sms_error(
                session,
                message,
                int(error.code),
                clinic=path.clinic,
                public_url=path.writer.public_url,
                now=at,
                actor=audit.WORKER,
            )
        return to(MessageStatus.FAILED, error.reason, error.code)
    if isinstance(error, DeliveryOutcomeUnknownError):
        return to(MessageStatus.UNKNOWN, error.reason, error.code)
    # We cannot tell whether it left: for a text, a guess of "not sent" risks a duplicate.
    reason = f"unexpected {type(error).__name__}; check before resending"
    return to(MessageStatus.UNKNOWN, reason, "unexpected")


def _hold(
    session: Session,
    message: Message,
    verdict: gates.Verdict,
    *,
    now: datetime,
    outcomes: Outcomes,
) -> Settled | None:
    """A queued row the gates hold back: skipped for good, or scheduled for later."""
    values: dict[str, Any] = {}
    if isinstance(verdict, gates.Skip):
        target = MessageStatus.SKIPPED
    else:
        assert isinstance(verdict, gates.Defer)
        target, values["due_at"] = MessageStatus.SCHEDULED, verdict.until
    done = settle.move(
        session, message, target, now=now, expected=QUEUED, reason=verdict.reason, **values
    )
    outcomes[message.id] = target if done is not None else None
    return done


def _reassigned(
    session: Session,
    message: Message,
    question: reassigned.Question,
    *,
    now: datetime,
    outcomes: Outcomes,
) -> Settled | None:
    """The number changed hands: this text is skipped, then the SMS consent is revoked (which
    cancels the lead's other pending texts)."""
    done = _hold(session, message, gates.Skip(reassigned.SKIP_REASON), now=now, outcomes=outcomes)
    if done is not None:
        reassigned.revoke(
            session, message.lead_id, question.consent_date, message_id=message.id, now=now
        )
    return done


def _fail_template(
    session: Session, message: Message, problem: str | None, now: datetime, outcomes: Outcomes
) -> Settled | None:
    """The template is missing or fails for this message: this row fails, the others go on."""
    done = settle.move(
        session,
        message,
        MessageStatus.FAILED,
        now=now,
        expected=QUEUED,
        reason=problem,
        code="template",
    )
    outcomes[message.id] = MessageStatus.FAILED if done is not None else None
    return done


def _wait_turn(
    session: Session,
    message: Message,
    turn: Slot,
    path: SendPath,
    now: datetime,
    outcomes: Outcomes,
) -> Settled | None:
    """A text whose slot in the throttle is still to come goes back to the schedule, keeping
    its slot (so the rate holds exactly and it takes no second one)."""
    assert path.throttle is not None
    done = settle.move(
        session,
        message,
        MessageStatus.SCHEDULED,
        now=now,
        expected=QUEUED,
        reason=f"waiting its turn ({path.throttle.per_second:g} text(s) a second)",
        due_at=clock.utcnow() + timedelta(seconds=turn.wait),  # the slot was taken just now
        context={**message.context, SLOT: turn.at},
    )
    outcomes[message.id] = MessageStatus.SCHEDULED if done is not None else None
    return done


def _wait_for_turn(message: Message, throttle: SenderThrottle, sender: str) -> Slot | None:
    """None when this text may leave now; else its reserved slot, in the future.

    A text that already holds a slot (it waited its turn) uses it and takes no second one."""
    reserved = message.context.get(SLOT)
    if isinstance(reserved, (int, float)):
        now = throttle.now()
        return None if now >= reserved - TURN_EARLY else Slot(wait=reserved - now, at=reserved)
    slot = throttle.take(sender)
    return slot if slot.wait > TURN_EARLY else None
