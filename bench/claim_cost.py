"""3. Claim cost against table size: one claim of a batch of due rows, with 10k, 100k and 1M
scheduled rows in the table (most not due yet). The partial index on due_at WHERE status =
'scheduled' should keep it flat; the query plan is printed to show it is used."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import environment, explain
from nurture import clock
from nurture.outbox import dispatch

FILL = """
INSERT INTO messages (lead_id, step_key, channel, purpose, template_key, anchor, anchor_version,
                      due_at, status, status_at, attempts, idempotency_key, created_at, context)
SELECT :lead, 'bench', 'email', 'care', 'welcome', 'enrolled_at', 0,
       CASE WHEN n <= :due THEN :now - interval '1 minute'
            ELSE :now + (n || ' seconds')::interval END,
       'scheduled', :now, 0, 'claim:' || :tag || ':' || n, :now, '{}'
FROM generate_series(1, :count) AS n
"""
CLAIM_SQL = """
UPDATE messages SET status = 'queued', status_at = :now WHERE id IN (
  SELECT id FROM messages WHERE status = 'scheduled' AND due_at <= :now
  ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id, channel
"""


def _lead(env: Any) -> str:
    from bench.harness import insert_due_messages

    insert_due_messages(env.services, 1, due_at=clock.utcnow() + timedelta(days=365))
    with env.services.engine.connect() as connection:
        return str(connection.execute(text("SELECT id FROM leads LIMIT 1")).scalar_one())


def time_claim(env: Any, batch: int, repeats: int) -> float:
    """Median seconds for one claim of ``batch`` rows; each claim is rolled back."""
    timings = []
    for _ in range(repeats):
        with env.services.sessions() as session:
            started = time.perf_counter()
            claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=batch)
            timings.append(time.perf_counter() - started)
            assert len(claimed) == batch
            session.rollback()
    return statistics.median(timings)


def run(
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), batch: int = 500, repeats: int = 15
) -> dict[str, Any]:
    results: dict[str, Any] = {"name": "claim cost vs table size", "batch": batch, "seconds": {}}
    with environment("claim") as env:
        lead = _lead(env)
        filled = 0
        for size in sizes:
            with env.services.engine.begin() as connection:
                connection.execute(
                    text(FILL),
                    {
                        "lead": lead,
                        "due": batch * 2 if filled == 0 else 0,
                        "now": clock.utcnow(),
                        "count": size - filled,
                        "tag": size,
                    },
                )
                connection.execute(text("ANALYZE messages"))
            filled = size
            time_claim(env, batch, 3)  # warm the cache
            results["seconds"][str(size)] = round(time_claim(env, batch, repeats), 5)
        results["plan_at_largest"] = explain(
            env.services, CLAIM_SQL, {"now": clock.utcnow(), "limit": batch}
        )
    smallest, largest = results["seconds"][str(sizes[0])], results["seconds"][str(sizes[-1])]
    results["ratio_largest_to_smallest"] = round(largest / smallest, 3)
    results["target"] = "<= 1.2"
    results["met"] = largest / smallest <= 1.2
    return results
