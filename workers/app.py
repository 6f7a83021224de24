"""Celery wiring: broker, queues, routes, reliability settings and the beat schedule.

Celery only carries work that is due now; delays live in the database (DESIGN.md §2), so no
task here is ever given an ETA or countdown.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from kombu import Queue

import workers.metrics_dir  # noqa: F401 - before anything imports prometheus_client
from nurture.broker import QUEUES
from nurture.config.logs import make_formatter, mask_handlers, quiet_task_lines
from nurture.config.settings import Settings, get_settings

BROKER_PURGE_INTERVAL = 600.0
# A send renders (within its render budget, seconds) and calls a provider (whose client has
# its own timeouts); a minute is far beyond both. The hard limit stays well below the reaper's
# "sending too long" (stale_sending_after), so a killed send becomes `unknown`, never a resend.
SEND_LIMITS = (60.0, 90.0)  # (soft, hard) seconds
# A batch renders each of its rows in turn (an e-mail's budget is 2 s) and waits for its
# provider calls for at most SendPath.answer_within (40 s); still far below the reaper's.
BATCH_LIMITS = (120.0, 150.0)
DEFAULT_LIMITS = (300.0, 360.0)  # any task without its own
NEW_LEAD_DIGEST_EVERY = 60.0  # seconds (issue 13 §5)


def time_limits(settings: Settings) -> dict[str, dict[str, float]]:
    """Soft and hard time limits per task: the soft one raises inside the task (a send then
    settles the row as `unknown`), the hard one kills the child process."""

    def limits(soft: float, hard: float) -> dict[str, float]:
        return {"soft_time_limit": soft, "time_limit": hard}

    # Dispatch drains due rows in committed batches, so stopping it between two is harmless;
    # the reaper also asks the SMS provider about each `unknown` row.
    dispatch = max(30.0, 6 * settings.dispatch_interval)
    reap = max(120.0, 2 * settings.reap_interval)
    return {
        "nurture.send_emails": limits(*BATCH_LIMITS),
        "nurture.send_texts": limits(*BATCH_LIMITS),
        "nurture.send_email": limits(*SEND_LIMITS),
        "nurture.send_sms": limits(*SEND_LIMITS),
        "nurture.dispatch_due": limits(dispatch, dispatch + 15),
        "nurture.reap_stale": limits(reap, reap + 30),
        "nurture.purge_broker": limits(120.0, 180.0),
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task_annotations": time_limits(settings),
        "task_soft_time_limit": DEFAULT_LIMITS[0],
        "task_time_limit": DEFAULT_LIMITS[1],
        "broker_url": settings.resolved_broker_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        # A task is acknowledged after it ran, and given back if its worker dies mid-way;
        # the row's conditional UPDATE makes running it twice harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "dispatch",
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": {
            "nurture.send_emails": {"queue": "email"},
            "nurture.send_texts": {"queue": "sms"},
            "nurture.send_email": {"queue": "email"},
            "nurture.send_sms": {"queue": "sms"},
            "nurture.*": {"queue": "dispatch"},
        },
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "dispatch-due": {
                "task": "nurture.dispatch_due",
                "schedule": settings.dispatch_interval,
                # A tick nobody ran in time is worthless: the next one claims the same rows.
                "options": {"expires": max(settings.dispatch_interval, 1.0)},
            },
            "reap-stale": {
                "task": "nurture.reap_stale",
                "schedule": settings.reap_interval,
                "options": {"expires": settings.reap_interval},
            },
            # Speed-to-lead (issue 13 §5): the digest goes on the first tick in staffed hours;
            # each tick also shows `nurture doctor` that a beat is alive.
            "new-lead-digest": {
                "task": "nurture.new_lead_digest",
                "schedule": NEW_LEAD_DIGEST_EVERY,
                "options": {"expires": NEW_LEAD_DIGEST_EVERY},
            },
        },
    }
    if settings.imap_url is not None:
        # Replies by e-mail (issue 13 §2). A poll may wait in IDLE for most of its interval;
        # a tick that finds the last one still running just expires.
        config["beat_schedule"]["read-reply-mailbox"] = {
            "task": "nurture.read_reply_mailbox",
            "schedule": settings.imap_poll_interval,
            "options": {"expires": settings.imap_poll_interval},
        }
    if settings.embedded_broker:
        from kombu.transport import sqlalchemy as kombu_sqlalchemy

        # The SQLAlchemy transport polls; its interval is a class attribute, because kombu
        # passes broker_transport_options straight to create_engine (stack-notes).
        kombu_sqlalchemy.Transport.polling_interval = 0.25
        config["beat_schedule"]["purge-broker"] = {
            "task": "nurture.purge_broker",
            "schedule": BROKER_PURGE_INTERVAL,
            "options": {"expires": BROKER_PURGE_INTERVAL},
        }
    return config


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_celery_logs(logger: logging.Logger, **_kwargs: Any) -> None:
    # Celery's own handlers print task arguments and exceptions: mask them like ours, and
    # write JSON lines unless a person is watching a terminal.
    settings = get_settings()
    for handler in logger.handlers:
        if settings.log_format != "text" and not (
            settings.log_format == "auto" and _is_tty(handler)
        ):
            handler.setFormatter(make_formatter("json"))
    mask_handlers(logger)
    if not settings.log_tasks:
        quiet_task_lines()  # set before the prefork children fork: they inherit it


def _is_tty(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


def create_app(settings: Settings | None = None) -> Celery:
    app = Celery("nurture", include=["workers.tasks", "workers.lifecycle"])
    app.conf.update(celery_config(settings or get_settings()))
    return app


app = create_app()
