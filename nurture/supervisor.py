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
import socket
import subprocess
import sys
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
    # Printed once the web child accepts connections on (host, port), not before: a newcomer
    # who opens the link at once finds a page, not "connection refused".
    announce: list[str] = field(default_factory=list)
    listening_on: tuple[str, int] | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> Plan:
        values = json.loads(path.read_text())
        if values.get("listening_on") is not None:
            host, port = values["listening_on"]
            values["listening_on"] = (str(host), int(port))
        return cls(**values)


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
    ready = Announcement(plan.announce, plan.listening_on) if plan.announce else None
    return supervise(children, env={**os.environ, **plan.env}, ready=ready)


@dataclass
class Announcement:
    """Lines to print once something listens on ``address`` (at once when there is none)."""

    lines: list[str]
    address: tuple[str, int] | None
    done: bool = False

    def try_now(self) -> None:
        if self.done or (self.address is not None and not _listening(*self.address)):
            return
        sys.stdout.write("".join(f"{line}\n" for line in self.lines))
        sys.stdout.flush()
        self.done = True


def _listening(host: str, port: int) -> bool:
    # A server bound to every address answers on loopback.
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    try:
        with socket.create_connection((target, port), timeout=0.2):
            return True
    except OSError:
        return False


def supervise(
    children: list[Child], *, env: dict[str, str], ready: Announcement | None = None
) -> int:
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
            if ready is not None:
                ready.try_now()
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
