"""The baseline: a bare Celery no-op task, on the same broker with the same worker settings
(acks_late, prefetch 1, JSON, prefork), so each figure means "compared with Celery itself"."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from nurture.config.settings import Settings
from workers.app import celery_config

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
app = Celery("bare")
app.conf.update(celery_config(Settings(broker_url=REDIS_URL)))
app.conf.update(task_default_queue="bare", task_routes={}, beat_schedule={})
_redis = redis.Redis.from_url(REDIS_URL)


@app.task(name="bench.noop")
def noop() -> None:
    # Only what it takes to know when the first and last task ran.
    now = time.time()
    _redis.set("bench:first", now, nx=True)
    _redis.set("bench:last", now)
    _redis.incr("bench:done")
