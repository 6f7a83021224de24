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
from datetime import timedelta

import pytest
from sqlalchemy import select

from nurture import clock
from nurture.db.models import Channel, Message, MessageAttempt, MessageStatus
from nurture.outbox import dispatch, send
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
