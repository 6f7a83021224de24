"""The send outcomes as Prometheus metrics, counted where a send settles (the worker).

`nurture.ops.metrics` exposes them with the state it reads at scrape time; they live here so
that the send path does not import the ops layer above it.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram

SENDS = Counter("nurture_sends", "Send attempts by outcome", ["channel", "status"])
SEND_LATENCY = Histogram(
    "nurture_send_latency_seconds",
    "From the moment a message was due to the moment it was sent",
    ["channel"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400),
)
PROVIDER_ERRORS = Counter(
    "nurture_provider_errors", "Errors answered by SMTP or Twilio", ["channel", "code"]
)


def record_outcome(
    channel: str, status: str, *, due_at: datetime, sent_at: datetime | None, code: str | None
) -> None:
    SENDS.labels(channel, status).inc()
    if status == "sent" and sent_at is not None:
        SEND_LATENCY.labels(channel).observe(max(0.0, (sent_at - due_at).total_seconds()))
    if code:
        PROVIDER_ERRORS.labels(channel, code).inc()
