"""`nurture run`: web, worker and beat as child processes of one command, in one process group.

The supervisor is a bare Python (this module and nurture.config.logs import only the standard
library): a first child, ``nurture prepare-run``, reads the settings, migrates, syncs the
templates and writes down the plan: each child's argv and the environment they share. The
supervisor then only starts and watches them, so the parent of everything costs ~10 MB
instead of a whole copy of the application.

Ctrl-C in a terminal reaches every process of the group; each stops gracefully, and the
supervisor waits for them (then insists). If any child dies, the others are stopped too, so
the service never runs half-alive.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from nurture.config.logs import configure_logging

log = logging.getLogger(__name__)

GRACE_SECONDS = 20.0


@dataclass
class Child:
    name: str
    command: Sequence[str]
    process: subprocess.Popen[bytes] | None = None


@dataclass(frozen=True)
class Plan:
    """What the preparing child hands the supervisor: who to start, with what environment."""

    children: dict[str, list[str]]
    env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    log_format: str = "auto"

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))


def run_embedded(prepare: Sequence[str]) -> int:
    """Run ``prepare`` (given ``--plan PATH``) to completion, then supervise what it planned.
    Its exit code is ours if it fails: it has already said why."""
    with tempfile.TemporaryDirectory(prefix="nurture-run-") as directory:
        plan_path = Path(directory) / "plan.json"
        try:
            prepared = subprocess.run([*prepare, "--plan", str(plan_path)], check=False)  # noqa: S603 - our own argv
        except KeyboardInterrupt:  # Ctrl-C while migrating: the child stopped too
            return 130
        if prepared.returncode != 0:
            return prepared.returncode
        plan = Plan.read(plan_path)
    configure_logging(plan.log_level, plan.log_format)
    children = [Child(name, command) for name, command in plan.children.items()]
    return supervise(children, env={**os.environ, **plan.env})


def supervise(children: list[Child], *, env: dict[str, str]) -> int:
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        for child in children:
            child.process = subprocess.Popen(child.command, env=env)  # noqa: S603 - our own argv
        while not stopping.is_set():
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    log.error("%s exited with code %s; stopping the others", child.name, code)
                    exit_code = code or 1
                    stopping.set()
            stopping.wait(0.5)
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def _stop_all(children: list[Child]) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        child.process.terminate()
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", child.name, GRACE_SECONDS)
            child.process.kill()
            child.process.wait()
