"""Every benchmark runs end to end at a tiny size (the figures themselves are not asserted:
performance is measured by `make bench`, never by the test suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.bench  # minutes of real processes: `make test` only


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
        "embedded_memory",
    }
    assert (
        figures["send_rate"]["bare_celery_per_s"] > 0 and figures["send_rate"]["nurture_per_s"] > 0
    )
    assert figures["burst"]["nothing_lost"] is True
    assert set(figures["claim_cost"]["seconds"]) == {"1000", "3000"}
    assert "Index" in figures["claim_cost"]["plan_at_largest"]
    # Lateness is sent_at - due_at over every sent row: no row leaves before it is due (the
    # claim takes only due rows), the percentiles are in order, and at this size nothing waits
    # minutes (the burst's include the worker's start-up). A clock or zone mix-up is hours off.
    for name in ("lateness", "burst"):
        late = figures[name]["lateness_seconds"]
        assert 0 <= late["p50"] <= late["p95"] <= late["p99"] <= late["max"] < 300, (name, late)
        assert 0 <= late["mean"] <= late["max"], (name, late)
    assert figures["intake"]["bare_fastapi_per_s"] > 0 and figures["intake"]["nurture_per_s"] > 0
    # The CPU census saw the process under test, and PostgreSQL somewhere (a wrong pid or
    # process name reads 0). At these sizes one part may use less than a clock tick (10 ms)
    # in one benchmark, so PostgreSQL is asked of both together.
    censuses = [
        figures["send_rate"]["census_ms_per_message"],
        figures["intake"]["census_ms_per_signup"],
    ]
    for shares in censuses:
        assert set(shares) == {"measured", "postgresql", "redis", "harness"}, shares
        assert shares["measured"] > 0 and min(shares.values()) >= 0, shares
    assert sum(shares["postgresql"] for shares in censuses) > 0, censuses
    for name in ("send_rate", "intake"):
        assert figures[name]["cores_needed_at_target"] > 0
    assert set(figures["memory"]["rss_mib"]) == {"20", "60"}
    # The embedded run really sent something, and every process measures above a bare Python.
    embedded = figures["embedded_memory"]
    assert embedded["outbox_files_after_burst"] > 0
    assert embedded["pss_mib"]["idle"]["total"] > embedded["bare_python_mib"] > 0
