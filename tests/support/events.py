"""Awaiting the event that proves work was done, so a test can then assert an absence.

"Nothing was sent twice" is only proven once the system has demonstrably had the chance to
send it twice: a later row settled, or the log shows the periodic task ran again. Sleeping a
fixed time proves nothing on a slow machine and wastes time on a fast one.
"""

from __future__ import annotations

import re

from tests.support.processes import Process, wait_until

__all__ = ["LogMark"]


class LogMark:
    """A point in a process's log; waits for lines printed after it.

    ``mark = LogMark(worker)`` before the action, then ``mark.wait_for(pattern)``: only output
    written after the mark counts, so an old line never satisfies a new wait."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.offset = len(process.output())

    def since(self) -> str:
        return self.process.output()[self.offset :]

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.since()))

    def wait_for(self, pattern: str, *, times: int = 1, timeout: float = 30.0) -> str:
        """Wait until ``pattern`` has appeared ``times`` times since the mark; return the text."""

        def seen() -> bool:
            if self.process.popen.poll() is not None:
                raise AssertionError(
                    f"{self.process.name} exited with {self.process.popen.returncode}:\n"
                    f"{self.process.output()[-4000:]}"
                )
            return self.count(pattern) >= times

        try:
            wait_until(seen, timeout=timeout, what=f"{self.process.name} to print {pattern!r}")
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- {self.process.name} output since the mark ---\n"
                f"{self.since()[-4000:]}"
            ) from None
        return self.since()
