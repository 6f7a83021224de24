"""Real processes for integration tests: the web server, a Celery worker, `nurture run`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from tests.support.smtp_server import free_port

__all__ = ["Process", "free_port", "wait_until"]


def wait_until(predicate: object, *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A child process whose output goes to a log file the test can read and show."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_dir: Path,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=new_session
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 30.0) -> None:
        regex = re.compile(pattern)

        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
                )
            return bool(regex.search(self.output()))

        try:
            wait_until(seen, timeout=timeout, what=f"{self.name} to print {pattern!r}")
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- {self.name} output ---\n{self.output()[-4000:]}"
            ) from None

    def wait_for_http(self, url: str, timeout: float = 30.0) -> None:
        def answers() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout=timeout, what=f"{url} to answer")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


def child_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NURTURE_", "TWILIO_")) and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    # Test and bench stacks serve plain http on loopback (see tests/conftest.py).
    env["NURTURE_ALLOW_INSECURE_PUBLIC_URL"] = "1"
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env
