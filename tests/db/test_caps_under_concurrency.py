"""Issue 11 §3: the caps hold however many workers send at once.

A send checks its gates, ends that transaction, renders, then claims the row. Here a second
worker's whole send happens exactly in that gap (inside the first one's render), the window
where two workers could both pass a cap that had room for one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from nurture import clock
from nurture.content import compose
from nurture.db.models import Message, MessageStatus
from nurture.outbox import dispatch, send
from nurture.runtime import Services
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, plan_marketing_texts, sign_up

CAP = 3  # config/policy.yaml: sms_marketing_per_24h


def statuses(services: Services, ids: list[int]) -> dict[int, Message]:
    with services.sessions() as session:
        return {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}


def claim(services: Services, ids: list[int]) -> None:
    with services.sessions() as session:
        claimed = {row.id for row in dispatch.claim_due(session, now=clock.utcnow(), limit=100)}
        session.commit()
    assert set(ids) <= claimed


def test_a_send_in_the_gap_between_gate_and_claim_still_counts_against_the_cap(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id: uuid.UUID = sign_up(services)
    claim_and_send_all(services)  # the opt-in confirmation goes first
    earlier = plan_marketing_texts(services, lead_id, CAP - 1, prefix="earlier")
    claim_and_send_all(services)
    assert all(m.status is MessageStatus.SENT for m in statuses(services, earlier).values())

    first, second = plan_marketing_texts(services, lead_id, 2, prefix="racing")
    claim(services, [first, second])  # both queued: each passed its gates with one slot left

    real_render = compose.render_record
    interleaved: list[MessageStatus | None] = []
    started = False

    def render_while_another_worker_sends(*args: Any, **kwargs: Any) -> Any:
        nonlocal started
        if not started:  # only the first worker's render; the second renders normally
            started = True
            with services.sessions() as other_worker:
                interleaved.append(send.send_message(other_worker, second, services.send_path))
        return real_render(*args, **kwargs)

    monkeypatch.setattr(compose, "render_record", render_while_another_worker_sends)
    with services.sessions() as session:
        outcome = send.send_message(session, first, services.send_path)

    assert interleaved == [MessageStatus.SENT]
    assert outcome is MessageStatus.SCHEDULED
    rows = statuses(services, [first, second])
    assert rows[second].status is MessageStatus.SENT
    assert rows[first].status is MessageStatus.SCHEDULED
    assert f"at most {CAP} per 24 hours" in (rows[first].last_error or "")
    texts = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert len(texts) == 1 + CAP  # the opt-in confirmation and exactly CAP marketing texts


def test_a_text_on_its_way_or_unknown_counts_against_the_cap(services: Services) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    held = plan_marketing_texts(services, lead_id, CAP - 1, prefix="held")
    with services.sessions.begin() as session:  # one may have left (a crash), one is leaving now
        for message_id, status in zip(
            held, (MessageStatus.UNKNOWN, MessageStatus.SENDING), strict=True
        ):
            session.get_one(Message, message_id).status = status
    [last, extra] = plan_marketing_texts(services, lead_id, 2, prefix="more")
    claim_and_send_all(services)
    rows = statuses(services, [last, extra])
    assert sorted(m.status.value for m in rows.values()) == ["scheduled", "sent"]
