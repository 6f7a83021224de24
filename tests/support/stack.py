"""The production topology as real processes for integration tests: `nurture serve` and Celery
workers (each with its own beat when asked), on a Redis broker and a PostgreSQL database."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO
from tests.support.processes import Process, child_env, free_port, python_argv


@dataclass
class Stack:
    database_url: str
    broker_url: str
    log_dir: Path
    var_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def __post_init__(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file here

    def env(self, **more: str) -> dict[str, str]:
        values = {
            "NURTURE_CONFIG_DIR": str(REPO / "config"),
            "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
            "NURTURE_SECRET_KEY": "integration-secret-key",
            "NURTURE_API_KEY": "integration-api-key",
            "NURTURE_DATABASE_URL": self.database_url,
            "NURTURE_BROKER_URL": self.broker_url,
            "NURTURE_PUBLIC_URL": self.public_url,
            "NURTURE_VAR_DIR": str(self.var_dir),
            "NURTURE_DISPATCH_INTERVAL": "0.5",
            "NURTURE_WORKER_METRICS_PORT": "0",
            "NURTURE_LOG_FORMAT": "json",
            **self.extra_env,
            **more,
        }
        return child_env(**values)

    def web(self) -> Process:
        process = Process(
            "web",
            python_argv("-m", "nurture", "serve", "--port", str(self.web_port)),
            env=self.env(),
            log_dir=self.log_dir,
        )
        self.processes.append(process)
        process.wait_for_http(f"{self.public_url}/healthz")
        return process

    def worker(
        self, name: str = "worker", *, beat: bool = True, concurrency: int = 2, **env: str
    ) -> Process:
        argv = [
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            "--queues",
            "dispatch,email,sms",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}@%h",
        ]
        if beat:
            argv += ["--beat", "--schedule", str(self.var_dir / f"{name}-beat-schedule")]
        process = Process(
            name, python_argv(*argv), env=self.env(**env), log_dir=self.log_dir, new_session=True
        )
        self.processes.append(process)
        process.wait_for_output(r"ready\.", timeout=60)
        return process

    def kill(self, process: Process) -> None:
        """SIGKILL the whole process group: the worker and its prefork children die mid-task."""
        os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait(timeout=10)
        process.stop()  # closes its log

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.stop()


def start_embedded_run(
    var_dir: Path, log_dir: Path, *, dispatch_interval: float, config_dir: Path | None = None
) -> tuple[Process, str]:
    """`nurture run` on the embedded default (SQLite, files), answering, its worker ready; and
    its URL. The caller stops it (Ctrl-C is SIGINT to its process group)."""
    from tests.integration.conftest import app_env

    port = free_port()
    run = Process(
        "run",
        python_argv("-m", "nurture", "run", "--port", str(port)),
        env=app_env(
            NURTURE_VAR_DIR=str(var_dir),
            NURTURE_DISPATCH_INTERVAL=str(dispatch_interval),
            **({"NURTURE_CONFIG_DIR": str(config_dir)} if config_dir else {}),
        ),
        log_dir=log_dir,
        new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        run.wait_for_http(f"{url}/healthz", timeout=60)
        run.wait_for_output(r"ready\.", timeout=60)
    except BaseException:
        run.stop(timeout=40)
        raise
    return run, url
