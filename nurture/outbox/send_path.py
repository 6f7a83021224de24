"""What the send path needs, handed to it instead of the whole composition root.

`nurture.runtime.Services.send_path` builds one per process (after the worker's fork, since it
holds the transports); sending (:mod:`nurture.outbox.send`) and delivery reports
(:mod:`nurture.outbox.reports`) take it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nurture.config.clinic import Clinic
from nurture.config.policy import Policy
from nurture.content.compose import Writer
from nurture.outbox.throttle import SenderThrottle
from nurture.program.sequence_store import SequenceSource
from nurture.transports import EmailTransport, SmsTransport

# Provider calls of one batch in flight at once. The calls wait on the network, not the CPU;
# eight keep a worker busy without opening many connections to one provider.
PARALLEL_CALLS = 8
# How long a batch waits for its provider calls. Each transport has its own, shorter timeout
# (SMTP 20 s, Twilio 15 s by default); a call still without an answer after this is settled
# `unknown` (it may have left) so the rest of the batch is settled and not left `sending`.
ANSWER_WITHIN = timedelta(seconds=40)


@dataclass(frozen=True)
class SendPath:
    writer: Writer  # the clinic, where links point, the templates and the renderer
    policy: Policy
    sequences: SequenceSource  # the program as published now (issue 15 §1)
    email: EmailTransport
    sms: SmsTransport
    throttle: SenderThrottle | None  # the per-sender bucket for texts; None: no limit
    sms_sender: str  # whose bucket: the messaging service or the sending number
    max_attempts: int
    retry_base: timedelta
    unsubscribe_mailto: str  # the List-Unsubscribe mailto of marketing e-mails ("": none)
    parallel_calls: int = PARALLEL_CALLS
    answer_within: timedelta = ANSWER_WITHIN

    @property
    def clinic(self) -> Clinic:
        return self.writer.clinic
