"""Celery tasks: a few lines each, opening a session and calling one domain function."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache

from sqlalchemy import text

from nurture import clock, ops
from nurture.config.logs import configure_logging
from nurture.config.settings import get_settings
from nurture.db import session_scope
from nurture.db.models import Channel
from nurture.leads import notices
from nurture.outbox import dispatch, planner, send
from nurture.outbox.dispatch import Claimed
from nurture.preview import experiment_results
from nurture.runtime import Services, build_services
from workers.app import app

log = logging.getLogger(__name__)


@cache
def services() -> Services:
    """Built on first use in each worker process (after the prefork fork, never before)."""
    configure_logging(get_settings().log_level, get_settings().log_format)
    return build_services(get_settings())


def publish_sends(claimed: list[Claimed]) -> None:
    """Publish the rows as send batches (one task per few rows of a channel) through a single
    producer connection."""
    if not claimed:
        return
    with app.producer_or_acquire() as producer:
        for channel, ids in dispatch.batches(claimed, send.BATCH_SIZE):
            task = send_emails if channel is Channel.EMAIL else send_texts
            task.apply_async((ids,), producer=producer)


@app.task(name="nurture.dispatch_due")
def dispatch_due() -> int:
    runtime = services()
    total = 0
    while True:  # drain everything due now, one committed batch at a time
        with session_scope(runtime.sessions) as session:
            claimed = dispatch.claim_due(
                session, now=clock.utcnow(), limit=runtime.settings.dispatch_batch_size
            )
        publish_sends(claimed)
        total += len(claimed)
        if len(claimed) < runtime.settings.dispatch_batch_size:
            return total


@app.task(name="nurture.send_emails")
def send_emails(message_ids: list[int]) -> None:
    with services().sessions() as session:
        send.send_batch(session, message_ids, services().send_path)


@app.task(name="nurture.send_texts")
def send_texts(message_ids: list[int]) -> None:
    with services().sessions() as session:
        send.send_batch(session, message_ids, services().send_path)


# One row per task, as published before batches: kept so that tasks already in the broker
# at an upgrade are still run (the row's conditional UPDATE makes a late one harmless).
@app.task(name="nurture.send_email")
def send_email(message_id: int) -> None:
    with services().sessions() as session:
        send.send_message(session, message_id, services().send_path)


@app.task(name="nurture.send_sms")
def send_sms(message_id: int) -> None:
    with services().sessions() as session:
        send.send_message(session, message_id, services().send_path)


@app.task(name="nurture.reap_stale")
def reap_stale() -> None:
    settings = services().settings
    with session_scope(services().sessions) as session:
        reaped = dispatch.reap(
            session,
            now=clock.utcnow(),
            stale_queued=timedelta(seconds=settings.stale_queued_after),
            stale_sending=timedelta(seconds=settings.stale_sending_after),
        )
        planner.complete_finished(session, catalog=services().catalog, now=clock.utcnow())
    publish_sends(reaped.requeued)
    # A/B winners (issue 15 §3), only if policy.experiments.auto_promote; its own transaction,
    # so a failure here never undoes the reaping.
    with session_scope(services().sessions) as session:
        experiment_results.auto_promote(session, services().catalog, services().policy)
    with session_scope(services().sessions) as session:
        ops.reconcile_unknown(
            session,
            services().sms,
            now=clock.utcnow(),
            older_than=timedelta(seconds=settings.stale_sending_after),
        )


@app.task(name="nurture.purge_broker")
def purge_broker() -> None:
    """Delete consumed messages: kombu's SQLAlchemy transport keeps them, so the file grows."""
    from sqlalchemy import create_engine

    url = get_settings().resolved_broker_url.removeprefix("sqla+")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM kombu_message WHERE visible = 0"))
    finally:
        engine.dispose()


# --- speed-to-lead (issue 13 §5) ---
@app.task(name="nurture.new_lead_digest")
def new_lead_digest() -> int:
    """The morning digest of the night's new leads, sent on the first run in staffed hours."""
    runtime = services()
    with session_scope(runtime.sessions) as session:
        now = clock.utcnow()
        notices.record_beat_tick(session, notices.DIGEST_TASK, now=now)
        return notices.send_digest(
            session, clinic=runtime.clinic, public_url=runtime.settings.public_url, now=now
        )


# --- replies by e-mail (issue 13 §2) ---
@app.task(name="nurture.read_reply_mailbox")
def read_reply_mailbox() -> int:
    """Read the reply mailbox (scheduled only when NURTURE_IMAP_URL is set)."""
    from nurture.replies import mailbox

    runtime = services()
    url = runtime.settings.imap_url
    if url is None:
        return 0
    report = mailbox.poll(
        url.get_secret_value(),
        runtime.sessions,
        writer=runtime.writer,
        keyword_lists=runtime.policy.keywords,
        idle_seconds=runtime.settings.imap_idle_seconds,
    )
    return report.handled
