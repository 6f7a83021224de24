"""The provider calls of a batch, side by side, with no transaction open.

A call never raises: its answer is what the provider said (an id, or the transport's error).
The calls of one batch run on a few threads (the transports are thread-safe); the batch waits
for them for at most `SendPath.answer_within`, so one provider that hangs does not keep the
others' outcomes from being recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from nurture import clock
from nurture.outbox.send_path import SendPath
from nurture.transports import (
    DeliveryError,
    DeliveryOutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    TransientDeliveryError,
)

log = logging.getLogger(__name__)

Outgoing = OutgoingEmail | OutgoingSms


@dataclass(frozen=True)
class Answer:
    """How one provider call ended: ``provider_id`` when it was taken, else ``error``."""

    started_at: datetime
    ended_at: datetime
    provider_id: str | None = None
    error: Exception | None = None


def unsubscribe_headers(url: str, mailto: str) -> dict[str, str]:
    """RFC 8058 one-click: exactly one HTTPS URI, plus a mailto when one is configured."""
    targets = f"<{url}>" + (f", <mailto:{mailto}?subject=unsubscribe>" if mailto else "")
    return {"List-Unsubscribe": targets, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def call(path: SendPath, outgoing: Outgoing) -> Answer:
    """One provider call; whatever the transport raises becomes the answer's error."""
    started_at = clock.utcnow()
    try:
        if isinstance(outgoing, OutgoingEmail):
            provider_id = path.email.send(outgoing)
        else:
            provider_id = path.sms.send(outgoing)
    except Exception as error:  # the settling step decides what each error means
        if not isinstance(error, DeliveryError):  # a bug or a surprise: keep its traceback
            log.exception("message %s: unexpected error from the transport", outgoing.reference)
        return Answer(started_at, clock.utcnow(), error=error)
    return Answer(started_at, clock.utcnow(), provider_id=provider_id)


def call_all(path: SendPath, outgoing: Sequence[Outgoing]) -> list[Answer]:
    """Every call's answer, in order; up to ``path.parallel_calls`` at once."""
    if len(outgoing) <= 1:
        return [call(path, one) for one in outgoing]
    started_at = clock.utcnow()
    pool = ThreadPoolExecutor(
        max_workers=min(path.parallel_calls, len(outgoing)), thread_name_prefix="provider-call"
    )
    try:
        futures = [pool.submit(call, path, one) for one in outgoing]
        wait(futures, timeout=path.answer_within.total_seconds())
    finally:
        # A call still running is left to finish on its thread (its transport's timeout ends
        # it); one not started yet never will be.
        pool.shutdown(wait=False, cancel_futures=True)
    return [_answer(future, started_at, path) for future in futures]


def _answer(future: Future[Answer], started_at: datetime, path: SendPath) -> Answer:
    if future.cancelled():
        # Never handed to the provider: safe to try again later.
        error: Exception = TransientDeliveryError(
            "not tried: the batch ran out of time waiting for other provider calls",
            code="batch-time",
        )
        return Answer(started_at, clock.utcnow(), error=error)
    if future.done():
        return future.result()
    seconds = path.answer_within.total_seconds()
    error = DeliveryOutcomeUnknownError(
        f"no answer from the provider within {seconds:g} s; check before resending",
        code="timeout",
    )
    return Answer(started_at, clock.utcnow(), error=error)
