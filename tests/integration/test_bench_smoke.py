"""Every benchmark runs end to end at a tiny size (the figures themselves are not asserted:
performance is measured by `make bench`, never by the test suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures) >= {
        "machine",
        "send_rate",
        "burst",
        "claim_cost",
        "lateness",
        "intake",
        "memory",
    }
    assert (
        figures["send_rate"]["bare_celery_per_s"] > 0 and figures["send_rate"]["nurture_per_s"] > 0
    )
    assert figures["burst"]["nothing_lost"] is True
    assert set(figures["claim_cost"]["seconds"]) == {"1000", "3000"}
    assert "Index" in figures["claim_cost"]["plan_at_largest"]
    assert figures["lateness"]["lateness_seconds"]["p99"] >= 0
    assert figures["intake"]["bare_fastapi_per_s"] > 0 and figures["intake"]["nurture_per_s"] > 0
    assert set(figures["memory"]["rss_mib"]) == {"20", "60"}
