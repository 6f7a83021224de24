"""`python -m bench`: the benchmark harness (filled in by the benchmarks issue)."""

import sys

sys.exit("no benchmarks yet: see docs/benchmarks.md")
