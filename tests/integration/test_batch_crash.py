"""Issue 11 §5 on real processes: a worker killed in the middle of a batch of texts.

The rows of the batch it had taken stay `sending` (nothing else does), the reaper makes them
`unknown`, and none is sent again blindly: the reconciler asks the provider, which has the texts
whose call had started (they become `sent`) and not the others (they go back to the schedule
and leave once). Every number gets exactly one text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nurture.config.settings import Settings
from nurture.db.models import AuditEvent, Channel, Message, MessageStatus
from nurture.outbox import send
from nurture.runtime import Services, build_services
from tests.conftest import REPO
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.factories import sign_up
from tests.support.processes import wait_until
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

LEADS = 20  # more than one batch of texts


def by_status(services: Services, channel: Channel) -> Counter[MessageStatus]:
    with services.sessions() as session:
        return Counter(
            dict(
                session.execute(
                    select(Message.status, func.count())
                    .where(Message.channel == channel)
                    .group_by(Message.status)
                ).all()
            )
        )


def test_a_worker_killed_mid_batch_leaves_only_its_batch_unknown_and_resends_nothing(
    pg_url: str, redis_url: str, twilio: TwilioStandIn, log_dir: Path, tmp_path: Path
) -> None:
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": twilio.url,
            "NURTURE_SMS_PER_SECOND": "0",
        },
    )
    services = build_services(
        Settings(
            database_url=pg_url,
            config_dir=REPO / "config",
            templates_dir=REPO / "templates",
            secret_key="integration-secret-key",
        )
    )
    zone = zone_where_it_is_daytime()
    try:
        for n in range(LEADS):
            sign_up(
                services,
                email=f"l{n}@example.com",
                phone=f"+1208555{n + 300:04d}",
                chosen_timezone=zone,
            )
        twilio.delay(60)  # every create call is recorded, then its answer never comes in time
        worker = stack.worker("doomed", concurrency=1)
        # The first batch of texts is taken and its calls are out (PARALLEL_CALLS at once).
        wait_until(lambda: len(twilio.messages) >= 1, timeout=30, what="the first calls")
        stack.kill(worker)

        texts = by_status(services, Channel.SMS)
        in_flight = texts[MessageStatus.SENDING]
        assert 0 < in_flight <= send.BATCH_SIZE, texts
        assert texts[MessageStatus.SENT] == 0  # no answer came back: nothing settled
        reached = {m.to for m in twilio.messages}
        assert len(reached) == len(twilio.messages) <= in_flight

        twilio.delay(0)
        stack.worker(
            "heir",
            concurrency=1,
            NURTURE_STALE_SENDING_AFTER="1",
            NURTURE_STALE_QUEUED_AFTER="1",
            NURTURE_REAP_INTERVAL="1",
        )
        wait_until(
            lambda: by_status(services, Channel.SMS)[MessageStatus.SENT] == LEADS,
            timeout=90,
            what="every text to be settled as sent",
        )
        # Each number got one text: the reconciler found the ones that had left, and only
        # those that never reached the provider were sent again.
        assert Counter(m.to for m in twilio.messages) == Counter(
            f"+1208555{n + 300:04d}" for n in range(LEADS)
        )
        with services.sessions() as session:
            unknown = session.scalars(
                select(AuditEvent.message_id).where(AuditEvent.action == "message.unknown")
            ).all()
        assert len(unknown) == in_flight  # exactly the batch that was in flight at the kill
    finally:
        stack.stop()
        services.close()
