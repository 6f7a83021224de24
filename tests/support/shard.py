"""Run the selected tests in a few pytest processes side by side (`make test-fast`).

The fast loop is hundreds of short tests, each paying for its own fresh database and app, so
one process leaves a second core idle. Every process collects the same tests, applies the same
`-m` selection, and keeps every n-th of what is left (``--shard i/n``): the split needs no list
to maintain and stays balanced as tests are added. No plugin beyond pytest is needed.

    python -m tests.support.shard 2 -m "not slow" tests/   # two processes; rc is the worst
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SHARD_OPTION = "--shard"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        SHARD_OPTION,
        default=None,
        metavar="I/N",
        help="keep only every N-th selected test, starting at the I-th (0-based)",
    )


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` have deselected: split what will really run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    option = config.getoption(SHARD_OPTION)
    if option is None:
        return
    index, count = (int(part) for part in str(option).split("/"))
    if not 0 <= index < count:
        raise pytest.UsageError(f"{SHARD_OPTION} {option}: need 0 <= I < N")
    kept = [item for n, item in enumerate(items) if n % count == index]
    others = [item for n, item in enumerate(items) if n % count != index]
    config.hook.pytest_deselected(items=others)
    items[:] = kept


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit() or int(argv[0]) < 1:
        print(__doc__, file=sys.stderr)  # noqa: T201 - a command-line tool's usage
        return 2
    count, pytest_args = int(argv[0]), argv[1:]
    with tempfile.TemporaryDirectory(prefix="nurture-shards-") as scratch:
        logs = [Path(scratch) / f"shard-{index}.log" for index in range(count)]
        running = []
        for index, log in enumerate(logs):
            argv_for_shard = [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "tests.support.shard",
                f"{SHARD_OPTION}={index}/{count}",
                *pytest_args,
            ]
            with log.open("wb") as out:
                running.append(subprocess.Popen(argv_for_shard, stdout=out, stderr=out))
        codes = [process.wait() for process in running]
        for index, (log, code) in enumerate(zip(logs, codes, strict=True)):
            print(f"\n===== shard {index + 1} of {count}: exit {code} =====", flush=True)  # noqa: T201
            sys.stdout.write(log.read_text(errors="replace"))
    # pytest's codes: 0 passed, 1 failed, 2+ errors; 5 "nothing collected" is fine for one shard.
    return max((0 if code == 5 else code) for code in codes)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
