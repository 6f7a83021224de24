"""Issue 11 §5: a send task carries a batch of rows and calls the providers side by side.

Each row keeps its own guarantees: one provider call that hangs or fails settles only its own
row, and a batch delivered twice (even at the same moment) sends each row once. The crash of a
worker mid-batch is in tests/integration/test_batch_crash.py."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from nurture import clock
from nurture.db.models import AuditEvent, Channel, Message, MessageAttempt, MessageStatus
from nurture.outbox import dispatch, provider_calls, send, states
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support import outbox_files
from tests.support.factories import sign_up
from tests.support.twilio_standin import TwilioStandIn

PHONES = [f"+1208555{n:04d}" for n in range(150, 156)]
HANGS, REFUSED = PHONES[1], PHONES[3]


def sign_up_many(services: Services) -> None:
    for n, phone in enumerate(PHONES):
        sign_up(services, email=f"lead{n}@example.com", phone=phone)


def claimed_texts(services: Services) -> list[int]:
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=100)
        session.commit()
    [ids] = [ids for channel, ids in dispatch.batches(claimed, 100) if channel is Channel.SMS]
    assert len(ids) == len(PHONES)
    return ids


def rows(services: Services, ids: list[int]) -> dict[int, Message]:
    with services.sessions() as session:
        return {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}


@pytest.fixture
def twilio_services(make_settings: SettingsFactory, twilio: TwilioStandIn) -> Iterator[Services]:
    built = build_services(make_settings(**twilio.settings()))
    yield built
    built.close()


def test_one_call_that_hangs_and_one_that_fails_settle_alone(
    twilio_services: Services, twilio: TwilioStandIn
) -> None:
    services = twilio_services
    sign_up_many(services)
    ids = claimed_texts(services)
    twilio.delay_for(HANGS, 30)  # far beyond the batch's patience; its SDK timeout is 15 s
    twilio.fail_for(REFUSED, 400, 21211, "Invalid 'To' Phone Number")
    path = dataclasses.replace(services.send_path, answer_within=timedelta(seconds=2))

    started = time.monotonic()
    with services.sessions() as session:
        outcomes = send.send_batch(session, ids, path)
    took = time.monotonic() - started

    assert took < 10, "the batch waited for the call that hangs"
    by_phone = dict(zip(PHONES, ids, strict=True))
    assert outcomes[by_phone[HANGS]] is MessageStatus.UNKNOWN
    assert outcomes[by_phone[REFUSED]] is MessageStatus.FAILED
    others = [by_phone[p] for p in PHONES if p not in (HANGS, REFUSED)]
    assert {outcomes[i] for i in others} == {MessageStatus.SENT}
    settled = rows(services, ids)
    assert "no answer from the provider within 2 s" in (settled[by_phone[HANGS]].last_error or "")
    assert settled[by_phone[REFUSED]].error_code == "21211"
    # Each text reached the provider once, the one that hangs included (it may have left).
    assert sorted(m.to for m in twilio.messages) == sorted(p for p in PHONES if p != REFUSED)
    with services.sessions() as session:
        attempts = session.scalars(
            select(MessageAttempt.outcome).where(MessageAttempt.message_id.in_(ids))
        ).all()
    assert Counter(attempts) == {
        MessageStatus.SENT: 4,
        MessageStatus.UNKNOWN: 1,
        MessageStatus.FAILED: 1,
    }


def test_a_batch_delivered_twice_at_once_sends_each_row_once(services: Services) -> None:
    sign_up_many(services)
    ids = claimed_texts(services)
    start = threading.Barrier(2)
    results: list[send.Outcomes | BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            with services.sessions() as session:
                results.append(send.send_batch(session, ids, services.send_path))
        except BaseException as error:  # shown by the assertion below
            results.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(result, dict) for result in results), results
    # Every row was sent by exactly one of the two deliveries; the other found it taken.
    for message_id in ids:
        outcomes = [result[message_id] for result in results if isinstance(result, dict)]
        assert sorted(outcomes, key=str) == sorted([MessageStatus.SENT, None], key=str)
    texts = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert sorted(t.to for t in texts) == sorted(PHONES)
    with services.sessions() as session:
        assert all(m.attempts == 1 for m in rows(services, ids).values())
        assert len(session.scalars(select(MessageAttempt.id)).all()) == len(ids)
    with services.sessions() as session:  # and once more, later: nothing left to do
        assert set(send.send_batch(session, ids, services.send_path).values()) == {None}
    assert len(outbox_files.texts(services.settings.resolved_outbox_dir)) == len(PHONES)


@contextmanager
def updates_of_messages(services: Services) -> Iterator[list[tuple[str, bool]]]:
    """Every UPDATE of `messages` the engine sends while the generator is open, and whether it
    went as an executemany (one statement for many rows, in one round trip)."""
    seen: list[tuple[str, bool]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            seen.append((statement, many))

    event.listen(services.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(services.engine, "before_cursor_execute", before)


def test_a_batch_takes_and_settles_its_rows_in_one_statement_each(services: Services) -> None:
    sign_up_many(services)
    ids = claimed_texts(services)
    with updates_of_messages(services) as seen, services.sessions() as session:
        outcomes = send.send_batch(session, ids, services.send_path)
    assert set(outcomes.values()) == {MessageStatus.SENT}
    # One executemany to take the six rows (`queued → sending`), one to settle them (`sent`).
    assert [many for _, many in seen] == [True, True]
    assert all("WHERE messages.id = " in statement for statement, _ in seen)


def move_meanwhile(services: Services, message_id: int, from_: MessageStatus, to: MessageStatus):
    with services.sessions.begin() as session:
        assert states.move(session, message_id, from_=[from_], to=to, now=clock.utcnow()) == 1


def test_a_row_stopped_while_the_batch_renders_is_left_alone_and_the_rest_go(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up_many(services)
    ids = claimed_texts(services)
    stopped = ids[2]
    real_render = send._render
    calls: list[Any] = []

    def render_while_a_stop_arrives(one: Any, path: Any) -> Any:
        if not calls:  # a STOP cancels one row of the batch after its gates were read
            move_meanwhile(services, stopped, MessageStatus.QUEUED, MessageStatus.CANCELLED)
        calls.append(one)
        return real_render(one, path)

    monkeypatch.setattr(send, "_render", render_while_a_stop_arrives)
    with services.sessions() as session:
        outcomes = send.send_batch(session, ids, services.send_path)
    assert outcomes[stopped] is None
    assert {outcomes[i] for i in ids if i != stopped} == {MessageStatus.SENT}
    settled = rows(services, ids)
    assert settled[stopped].status is MessageStatus.CANCELLED
    assert settled[stopped].attempts == 0
    texts = outbox_files.texts(services.settings.resolved_outbox_dir)
    expected = [phone for i, phone in zip(ids, PHONES, strict=True) if i != stopped]
    assert sorted(t.to for t in texts) == sorted(expected)


def test_a_report_that_beats_the_batch_settle_keeps_its_row_and_the_rest_settle(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up_many(services)
    ids = claimed_texts(services)
    reported = ids[4]
    real_call_all = provider_calls.call_all

    def calls_then_a_report(path: Any, outgoing: Any) -> Any:
        answers = real_call_all(path, outgoing)
        # The provider's "delivered" for one text lands before the batch records its answers.
        move_meanwhile(services, reported, MessageStatus.SENDING, MessageStatus.DELIVERED)
        return answers

    monkeypatch.setattr(provider_calls, "call_all", calls_then_a_report)
    with services.sessions() as session:
        outcomes = send.send_batch(session, ids, services.send_path)
    assert outcomes[reported] is None
    assert {outcomes[i] for i in ids if i != reported} == {MessageStatus.SENT}
    settled = rows(services, ids)
    assert settled[reported].status is MessageStatus.DELIVERED
    assert {settled[i].status for i in ids if i != reported} == {MessageStatus.SENT}
    with services.sessions() as session:
        attempts = session.scalars(
            select(MessageAttempt.message_id).where(MessageAttempt.message_id.in_(ids))
        ).all()
        sent_entries = session.scalars(
            select(AuditEvent.message_id).where(AuditEvent.action == "message.sent")
        ).all()
    assert sorted(attempts) == sorted(ids)  # every attempt is recorded, the reported one too
    assert sorted(i or 0 for i in sent_entries) == sorted(i for i in ids if i != reported)
