"""`make bench` / `python -m bench`: run the benchmarks, print each figure with its ratio
against the baseline measured in the same run, and keep the results as JSON.

    python -m bench                  # everything at the sizes in docs/benchmarks.md
    python -m bench --smoke          # every benchmark at a tiny size (what the test suite runs)
    python -m bench send_rate claim_cost
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import burst, claim_cost, embedded_memory, intake, lateness, memory, send_rate

FULL: dict[str, Callable[[], dict[str, Any]]] = {
    "send_rate": lambda: send_rate.run(20_000),
    "burst": lambda: burst.run(50_000),
    "claim_cost": lambda: claim_cost.run((10_000, 100_000, 1_000_000)),
    "lateness": lambda: lateness.run(20, 120),
    "intake": lambda: intake.run(2_000, 16),
    "memory": lambda: memory.run(1_000, 100_000),
    "embedded_memory": lambda: embedded_memory.run(200),
}
SMOKE: dict[str, Callable[[], dict[str, Any]]] = {
    "send_rate": lambda: send_rate.run(60),
    "burst": lambda: burst.run(80),
    "claim_cost": lambda: claim_cost.run((1_000, 3_000), batch=50, repeats=3),
    "lateness": lambda: lateness.run(5, 4),
    "intake": lambda: intake.run(40, 4),
    "memory": lambda: memory.run(20, 60),
    "embedded_memory": lambda: embedded_memory.run(10, idle_seconds=1.0),
}


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "names", nargs="*", help="which benchmarks (default: all of " + ", ".join(FULL) + ")"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the harness, measures nothing"
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/latest.json"))
    args = parser.parse_args(argv)
    suite = SMOKE if args.smoke else FULL
    unknown = sorted(set(args.names) - set(suite))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(suite)}")
    names = args.names or list(suite)
    results: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figure = suite[name]()
        figure["wall_seconds"] = round(time.perf_counter() - started, 1)
        results[name] = figure
        print(json.dumps(figure, indent=2, default=str), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
