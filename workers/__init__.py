"""Celery wiring only; every task calls one function of the domain (``nurture``).

Two things here are about memory, for `nurture run`'s single worker: the beat schedule can run
as a thread of the worker's main process (``--beat-thread``), and the forked processes keep
sharing the main process's memory (``gc.freeze`` before each fork).
"""

from __future__ import annotations

import gc
from typing import Any

import click
from celery import bootsteps
from celery.signals import worker_before_create_process, worker_init

from workers.app import app

__all__ = ["app"]


class BeatThread(bootsteps.StartStopStep):
    """``--beat-thread``: Celery's embedded beat as a thread instead of a forked process.

    ``--beat`` forks a process that costs ~40 MB to publish a task every few seconds; a thread
    does the same (its own broker connection, the same schedule file) for nothing."""

    label = "Beat thread"
    conditional = True

    def __init__(self, worker: Any, beat_thread: bool = False, **kwargs: Any) -> None:
        self.enabled = beat_thread
        super().__init__(worker, **kwargs)

    def create(self, worker: Any) -> Any:
        from celery.beat import EmbeddedService

        return EmbeddedService(
            worker.app,
            schedule_filename=worker.schedule_filename,
            scheduler_cls=worker.scheduler,
            thread=True,
        )


app.user_options["worker"].add(
    click.Option(
        ["--beat-thread"],
        is_flag=True,
        default=False,
        help="Run the beat schedule in a thread of this process (instead of --beat).",
    )
)
app.steps["worker"].add(BeatThread)


@worker_init.connect
@worker_before_create_process.connect
def _freeze_before_forking(**_kwargs: Any) -> None:
    # The worker's main process has imported the whole application by now; its prefork
    # children are forks of it. A collection in a child writes to every object it walks,
    # copying the page it sits on: frozen objects are never walked, so the children keep
    # sharing the parent's ~70 MB instead of each holding its own copy of most of it.
    gc.collect()
    gc.freeze()
