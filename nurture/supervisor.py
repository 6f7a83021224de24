"""`nurture run`: web, worker and beat as child processes of one command, in one process group.

Ctrl-C in a terminal reaches every process of the group; each stops gracefully, and the
supervisor waits for them (then insists). If any child dies, the others are stopped too, so
the service never runs half-alive.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

GRACE_SECONDS = 20.0


@dataclass
class Child:
    name: str
    command: Sequence[str]
    process: subprocess.Popen[bytes] | None = None


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
