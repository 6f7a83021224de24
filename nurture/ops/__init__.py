"""Operations: what the ops console shows and the switches it offers.

- `console`: status, lateness, heartbeats, pauses, retries, settling `unknown` texts.
- `metrics`: the Prometheus exposition.
"""

from nurture.ops.console import (
    ALIVE_WITHIN,
    HEARTBEAT_EVERY,
    LATENESS_SAMPLE,
    Lateness,
    OpsError,
    SequenceLine,
    Status,
    UnknownText,
    end_pause,
    percentile,
    purge_bodies,
    reconcile_unknown,
    record_heartbeat,
    retry_failed,
    sequence_lines,
    settle_answer,
    settle_unknown,
    start_pause,
    status,
    unknown_texts,
    workers_alive,
)

__all__ = [
    "ALIVE_WITHIN",
    "HEARTBEAT_EVERY",
    "LATENESS_SAMPLE",
    "Lateness",
    "OpsError",
    "SequenceLine",
    "Status",
    "UnknownText",
    "end_pause",
    "percentile",
    "purge_bodies",
    "reconcile_unknown",
    "record_heartbeat",
    "retry_failed",
    "sequence_lines",
    "settle_answer",
    "settle_unknown",
    "start_pause",
    "status",
    "unknown_texts",
    "workers_alive",
]
