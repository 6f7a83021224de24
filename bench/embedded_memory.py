"""7. The embedded `nurture run`'s memory: proportional set size (PSS) of the supervisor and all
its descendants (web, worker, its prefork children, beat), idle and after a burst of requests.

PSS, read from /proc/PID/smaps_rollup, splits each shared page between the processes that map
it, so the sum over a process tree is what the tree really costs the machine (RSS would count
the pages a forked worker child shares with its parent twice). The baseline, measured in the
same run, is a bare ``python -c "import time; time.sleep(60)"``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from nurture.config.clinic import load_disclosures
from tests.conftest import REPO
from tests.support.processes import Process, child_env, free_port, python_argv

TARGET_MIB = 300.0
MIB = 2**20


@dataclass(frozen=True)
class Reading:
    pid: int
    role: str
    pss: int  # bytes


def pss_of(pid: int) -> int:
    """The process's PSS in bytes (0 if it has gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name in parentheses may hold spaces: split after its closing one.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
    return parents


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()).strip()
    except OSError:
        return ""


def _role(pid: int, depth: int, command: str) -> str:
    if depth == 0:
        return "supervisor"
    if " serve" in command:
        return "web"
    if "celery" in command:
        return "worker" if depth == 1 else "worker child / beat"
    return command[:40] or "?"


def tree(root: int) -> list[Reading]:
    """PSS of ``root`` and every descendant, each with what it is."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    readings: list[Reading] = []
    todo = [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        readings.append(Reading(pid, _role(pid, depth, _cmdline(pid)), pss_of(pid)))
        todo.extend((child, depth + 1) for child in children.get(pid, ()))
    return readings


def by_role(readings: list[Reading]) -> dict[str, float]:
    sums: dict[str, int] = {}
    for reading in readings:
        sums[reading.role] = sums.get(reading.role, 0) + reading.pss
    return {role: round(pss / MIB, 1) for role, pss in sorted(sums.items())}


def bare_python_pss() -> int:
    """PSS of a Python that only sleeps: what a process costs before it imports anything."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1.0)
        return pss_of(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


API_KEY = "bench-api-key"


def _config_without_signup_limits(directory: Path) -> Path:
    config = directory / "config"
    shutil.copytree(REPO / "config", config)
    policy = yaml.safe_load((config / "policy.yaml").read_text())
    # The burst comes from one address; the limiter is not what is measured.
    policy["signups"] = {"per_ip": "1000000 per hour", "per_phone": "1000 per day"}
    (config / "policy.yaml").write_text(yaml.safe_dump(policy))
    return config


async def _burst(base: str, count: int, concurrency: int = 8) -> None:
    """``count`` requests: every other one shows the form, the rest sign up through the API."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    failures: list[int] = []
    limits = httpx.Limits(max_keepalive_connections=concurrency, max_connections=concurrency)
    # The API is the clinic's systems': its key, and the disclosure version their page showed.
    headers = {"Authorization": f"Bearer {API_KEY}"}
    version = load_disclosures(REPO / "config").version
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=30, headers=headers
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                if n % 2 == 0:
                    response = await client.get("/consult")
                    ok = response.status_code == 200
                else:
                    response = await client.post(
                        "/api/v1/signups",
                        json={
                            "first_name": f"Memory{n}",
                            "email": f"memory{n}@example.com",
                            "phone": f"+1208{5550000 + n:07d}",
                            "timezone": "America/Boise",
                            "consent": {"email_marketing": True, "sms_marketing": True},
                            "consent_version": version,
                        },
                    )
                    ok = response.status_code == 201
                if not ok:
                    failures.append(response.status_code)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise AssertionError(f"{len(failures)} of {count} requests failed: {sorted(set(failures))}")


def _wait_for_every_process(root: int, *, timeout: float = 90.0) -> None:
    """Until the supervisor, web, worker and its two prefork children (and beat, where it is a
    process) are there and no process has come or gone for three seconds."""
    deadline = time.monotonic() + timeout
    seen, since = frozenset[int](), time.monotonic()
    while time.monotonic() < deadline:
        now = frozenset(r.pid for r in tree(root))
        if now != seen:
            seen, since = now, time.monotonic()
        elif len(now) >= 5 and time.monotonic() - since >= 3.0:
            return
        time.sleep(0.25)
    raise TimeoutError(f"`nurture run` did not settle: processes {sorted(seen)}")


def _outbox_count(outbox: Path) -> int:
    return sum(1 for p in outbox.rglob("*") if p.is_file()) if outbox.is_dir() else 0


def _settle(outbox: Path, *, quiet_for: float = 3.0, timeout: float = 60.0) -> None:
    """Wait until the worker has stopped writing to the outbox (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = _outbox_count(outbox)
        if now_count != last:
            last, since = now_count, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return
        time.sleep(0.5)


def _table(rows: dict[str, dict[str, float]], baseline: float) -> str:
    roles = sorted({role for row in rows.values() for role in row} - {"total"})
    header = f"{'process':<22}" + "".join(f"{name:>14}" for name in rows)
    lines = [header]
    for role in [*roles, "total"]:
        cells = "".join(f"{row.get(role, 0.0):>10.1f} MiB" for row in rows.values())
        lines.append(f"{role:<22}{cells}")
    totals = "".join(f"{row['total'] / baseline:>13.1f}×" for row in rows.values())
    lines.append(f"{'total : bare python':<22}{totals}")
    return "\n".join(lines)


def run(requests: int = 200, idle_seconds: float = 5.0) -> dict[str, Any]:
    baseline = bare_python_pss() / MIB
    directory = Path(tempfile.mkdtemp(prefix="bench-embedded-memory-"))
    (directory / "logs").mkdir()
    port = free_port()
    env = child_env(
        NURTURE_VAR_DIR=str(directory / "var"),
        NURTURE_CONFIG_DIR=str(_config_without_signup_limits(directory)),
        NURTURE_TEMPLATES_DIR=str(REPO / "templates"),
        NURTURE_SECRET_KEY="bench-secret-key",
        NURTURE_API_KEY=API_KEY,
        NURTURE_LOG_LEVEL="WARNING",
        NURTURE_DISPATCH_INTERVAL="1",
    )
    started = time.monotonic()
    nurture = Process(
        "run",
        python_argv("-m", "nurture", "run", "--port", str(port)),
        env=env,
        log_dir=directory / "logs",
        new_session=True,
    )
    rows: dict[str, dict[str, float]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        nurture.wait_for_http(f"{base}/healthz", timeout=90)
        _wait_for_every_process(nurture.popen.pid)
        startup = time.monotonic() - started
        time.sleep(idle_seconds)
        idle = tree(nurture.popen.pid)
        rows["idle"] = {**by_role(idle), "total": round(sum(r.pss for r in idle) / MIB, 1)}
        asyncio.run(_burst(base, requests))
        outbox = directory / "var" / "outbox"
        _settle(outbox)
        delivered = _outbox_count(outbox)
        if not delivered:  # a stack that sends nothing would measure small for nothing
            raise AssertionError(f"no message reached {outbox}:\n{nurture.output()[-3000:]}")
        busy = tree(nurture.popen.pid)
        rows["after burst"] = {**by_role(busy), "total": round(sum(r.pss for r in busy) / MIB, 1)}
    finally:
        if nurture.popen.poll() is None:
            os.killpg(nurture.popen.pid, signal.SIGINT)
        nurture.stop(sig=signal.SIGINT, timeout=40)
        shutil.rmtree(directory, ignore_errors=True)
    print(_table(rows, baseline), flush=True)
    idle_total = rows["idle"]["total"]
    return {
        "name": "embedded nurture run memory (PSS)",
        "bare_python_mib": round(baseline, 1),
        "startup_seconds": round(startup, 1),
        "requests": requests,
        "outbox_files_after_burst": delivered,
        "pss_mib": rows,
        "idle_ratio": round(idle_total / baseline, 1),
        "after_burst_ratio": round(rows["after burst"]["total"] / baseline, 1),
        "target": f"idle <= {TARGET_MIB:.0f} MiB",
        "met": idle_total <= TARGET_MIB,
    }
