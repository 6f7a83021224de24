"""5. Intake: sign-ups per second over HTTP (real uvicorn, keep-alive client, 16 at a time),
against a bare FastAPI endpoint doing one INSERT, in the same run."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import Any

import httpx2 as httpx
import yaml

from bench.harness import Census, cores_needed, environment
from nurture.config.clinic import load_disclosures
from tests.conftest import REPO
from tests.support.processes import Process, child_env, free_port, python_argv

# What the clinic's systems send: the API key, and the disclosure version their page showed.
API_KEY = {"Authorization": "Bearer integration-api-key"}


async def _hammer(url: str, count: int, concurrency: int, version: str) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    failures: list[int] = []
    limits = httpx.Limits(max_keepalive_connections=concurrency, max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=API_KEY) as client:

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                response = await client.post(
                    url,
                    json={
                        "first_name": f"Intake{n}",
                        "email": f"intake{n}@example.com",
                        "phone": f"+1208{5550000 + n:07d}",
                        "timezone": "America/Boise",
                        "consent": {"email_marketing": True, "sms_marketing": True},
                        "consent_version": version,
                    },
                )
                if response.status_code != 201:
                    failures.append(response.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise AssertionError(f"{len(failures)} sign-ups failed: {sorted(set(failures))}")
    return count / elapsed


def _serve(name: str, argv: list[str], env: dict[str, str], log_dir: Any, port: int) -> Process:
    process = Process(name, argv, env=env, log_dir=log_dir)
    process.wait_for_http(
        f"http://127.0.0.1:{port}/docs" if name == "bare" else f"http://127.0.0.1:{port}/healthz"
    )
    return process


def run(count: int = 2000, concurrency: int = 16) -> dict[str, Any]:
    with environment("intake") as env:
        config = env.directory / "config"
        shutil.copytree(REPO / "config", config)
        version = load_disclosures(config).version
        policy = yaml.safe_load((config / "policy.yaml").read_text())
        policy["signups"] = {
            "per_ip": "1000000 per hour",
            "per_phone": "1000 per day",
        }  # not what is measured
        (config / "policy.yaml").write_text(yaml.safe_dump(policy))

        bare_port = free_port()
        bare = _serve(
            "bare",
            python_argv(
                "-m",
                "uvicorn",
                "bench.bare_intake:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ),
            child_env(BENCH_DATABASE_URL=env.database_url),
            env.directory / "logs",
            bare_port,
        )
        bare_census = Census(bare.popen.pid, count)
        bare_census.start()
        try:
            bare_rate = asyncio.run(
                _hammer(f"http://127.0.0.1:{bare_port}/api/v1/signups", count, concurrency, version)
            )
            bare_shares = bare_census.ms_each()
        finally:
            bare.stop()
        env.stack.extra_env.update(
            {"NURTURE_CONFIG_DIR": str(config), "NURTURE_LOG_LEVEL": "WARNING"}
        )
        web = env.stack.web()
        census = Census(web.popen.pid, count)
        census.start()
        ours = asyncio.run(
            _hammer(f"{env.stack.public_url}/api/v1/signups", count, concurrency, version)
        )
        shares = census.ms_each()
    return {
        "name": "intake",
        "requests": count,
        "concurrency": concurrency,
        "bare_fastapi_per_s": round(bare_rate, 1),
        "nurture_per_s": round(ours, 1),
        "ratio": round(ours / bare_rate, 3),
        "target": ">= 0.5",
        "met": ours / bare_rate >= 0.5,
        # CPU ms a sign-up of the web process ("measured"), PostgreSQL, Redis and this harness
        # (the HTTP client), and the cores all of it would need at the target rate.
        "census_ms_per_signup": shares,
        "bare_census_ms_per_signup": bare_shares,
        "cores_needed_at_target": cores_needed(shares, 0.5 * bare_rate),
        "cores": os.cpu_count(),
    }
