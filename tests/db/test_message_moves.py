"""Moves that race: the guarded move never writes over a row someone else moved, and an error
path never throws away what the provider's answer taught us (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from nurture import clock, consent, ops
from nurture.db import session_scope
from nurture.db.models import AuditEvent, Channel, Message, MessageStatus, Purpose
from nurture.outbox import dispatch, reports
from nurture.runtime import Services, build_services, build_sms_transport
from nurture.transports import DeliveryOutcomeUnknownError, OutgoingSms, SmsTransport
from tests.conftest import SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.transactions import transaction_open_elsewhere
from tests.support.twilio_standin import TwilioStandIn


class Meanwhile:
    """An SMS transport that lets something else happen while the provider is answering."""

    def __init__(self, inner: SmsTransport) -> None:
        self.inner = inner
        self.before_answer: Callable[[str], None] = lambda reference: None

    def send(self, sms: OutgoingSms) -> str:
        self.before_answer(sms.reference)
        return self.inner.send(sms)

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        return self.inner.find_sent(to=to, body=body, since=since, reference=reference)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def twilio_services(
    make_settings: SettingsFactory, twilio: TwilioStandIn
) -> Iterator[tuple[Services, Meanwhile]]:
    built = build_services(
        make_settings(
            **twilio.settings(),
        )
    )
    meanwhile = Meanwhile(build_sms_transport(built.settings))
    built.sms_override = meanwhile
    yield built, meanwhile
    built.close()


def sms_row(services: Services, lead_id: uuid.UUID) -> Message:
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)


def sms_allowed(services: Services, lead_id: uuid.UUID) -> bool:
    with services.sessions() as session:
        return consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)


def audited(services: Services, action: str) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_21610_after_ops_chose_to_resend_still_revokes_and_calls_off_the_resend(
    twilio_services: tuple[Services, Meanwhile], twilio: TwilioStandIn
) -> None:
    """The send was slow: the reaper made the row `unknown` and ops chose to send it again.
    Then Twilio answers 21610 (the number opted out at the carrier). The row is no longer ours
    to fail, but the opt-out is a fact about the number: it must be kept, and the resend that
    ops scheduled must not go to a number that said STOP."""
    services, meanwhile = twilio_services
    lead_id = sign_up(services)

    def reaper_then_ops(reference: str) -> None:
        with session_scope(services.sessions) as session:
            reaped = dispatch.reap(
                session,
                now=clock.utcnow() + timedelta(seconds=1),
                stale_queued=timedelta(hours=1),
                stale_sending=timedelta(0),
            )
            assert reaped.marked_unknown == 1
        with session_scope(services.sessions) as session:
            ops.settle_unknown(
                session,
                int(reference),
                sent=False,
                provider_id=None,
                actor="ops@example.com",
                now=clock.utcnow(),
                confirm_duplicate=True,
            )

    meanwhile.before_answer = reaper_then_ops
    twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    claim_and_send_all(services)

    assert not sms_allowed(services, lead_id)
    row = sms_row(services, lead_id)
    assert row.status is MessageStatus.CANCELLED  # the revocation called off the resend
    assert audited(services, "message.failed") == []  # it was not ours to fail any more
    claim_and_send_all(services)
    assert twilio.messages == []


# --- delivery reports never move a row backwards -------------------------------------------


def report(services: Services, provider_id: str, status: str, token: str) -> bool:
    with session_scope(services.sessions) as session:
        return reports.record_status(
            session,
            provider_id=provider_id,
            status=status,
            error_code=None,
            idempotency_key=token,
            payload={"MessageStatus": status},
            path=services.send_path,
            now=clock.utcnow(),
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_sent_report_overtaken_by_delivered_does_not_move_the_row_back(
    services: Services,
) -> None:
    """Two reports handled at once (PostgreSQL: SQLite serialises writers): "sent" for a row
    the reaper left `unknown` reads the row, then "delivered" commits before "sent" writes."""
    lead_id = sign_up(services)
    claim_and_send_all(services)
    row = sms_row(services, lead_id)
    assert row.provider_id
    with session_scope(services.sessions) as session:
        session.execute(
            update(Message).where(Message.id == row.id).values(status=MessageStatus.UNKNOWN)
        )

    overtaken = False

    def deliver_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal overtaken
        if not overtaken and statement.lstrip().upper().startswith("INSERT INTO DELIVERY_EVENTS"):
            overtaken = True
            assert report(services, row.provider_id or "", "delivered", "report-delivered")

    event.listen(services.engine, "before_cursor_execute", deliver_first)
    try:
        assert report(services, row.provider_id, "sent", "report-sent")
    finally:
        event.remove(services.engine, "before_cursor_execute", deliver_first)
    assert overtaken
    assert sms_row(services, lead_id).status is MessageStatus.DELIVERED
    assert [e for e in audited(services, "message.sent") if e.actor == "provider"] == []


# --- the reconciler asks the provider outside any transaction -------------------------------


class Unanswered:
    """A text transport whose sends time out; ``find_sent`` answers from ``found``."""

    def __init__(self) -> None:
        self.found: dict[str, str | None] = {}
        self.during_lookup: Callable[[str], None] = lambda reference: None

    def send(self, sms: OutgoingSms) -> str:
        raise DeliveryOutcomeUnknownError("the provider did not answer", code="timeout")

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        self.during_lookup(reference)
        return self.found[reference]

    def close(self) -> None:
        pass


def test_the_reconciler_holds_no_transaction_while_the_provider_is_asked(
    services: Services,
) -> None:
    sms = Unanswered()
    services.sms_override = sms
    first = sign_up(services)
    second = sign_up(services, email="b@example.com", phone="+12085550124")
    claim_and_send_all(services)
    found, lost = sms_row(services, first), sms_row(services, second)
    assert {found.status, lost.status} == {MessageStatus.UNKNOWN}
    sms.found = {str(found.id): "SMfound", str(lost.id): None}
    seen_open: list[bool] = []
    sms.during_lookup = lambda reference: seen_open.append(transaction_open_elsewhere(services))

    with session_scope(services.sessions) as session:  # as the reaper task calls it
        settled = ops.reconcile_unknown(
            session, sms, now=clock.utcnow() + timedelta(minutes=5), older_than=timedelta(0)
        )

    assert seen_open == [False, False]
    assert settled == 2
    found, lost = sms_row(services, first), sms_row(services, second)
    assert (found.status, found.provider_id) == (MessageStatus.SENT, "SMfound")
    assert lost.status is MessageStatus.SCHEDULED


def test_a_row_settled_by_ops_during_the_lookup_keeps_what_ops_decided(
    services: Services,
) -> None:
    sms = Unanswered()
    services.sms_override = sms
    lead_id = sign_up(services)
    claim_and_send_all(services)
    row = sms_row(services, lead_id)
    sms.found = {str(row.id): None}  # the provider has no record of it…

    def ops_marks_it_sent(reference: str) -> None:  # …but ops found it in Twilio's console
        with session_scope(services.sessions) as session:
            ops.settle_unknown(
                session,
                int(reference),
                sent=True,
                provider_id="SMfromconsole",
                actor="ops@example.com",
                now=clock.utcnow(),
            )

    sms.during_lookup = ops_marks_it_sent
    with session_scope(services.sessions) as session:
        settled = ops.reconcile_unknown(
            session, sms, now=clock.utcnow() + timedelta(minutes=5), older_than=timedelta(0)
        )

    assert settled == 0
    row = sms_row(services, lead_id)
    assert (row.status, row.provider_id) == (MessageStatus.SENT, "SMfromconsole")
    assert audited(services, "ops.reconciled_not_sent") == []
