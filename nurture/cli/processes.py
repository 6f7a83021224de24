"""Commands that start or prepare processes: `serve`, `run`, `db upgrade`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nurture.config.settings import Settings
    from nurture.db.models import Channel

from nurture.cli.base import cli, log, services_or_exit, settings_or_exit
from nurture.cli.consent import record_disclosures, sync_disclosures


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration, then import changed template and sequence files
    (templates sync, sequences sync)."""
    from nurture.config.logs import configure_logging
    from nurture.db import migrations

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    migrations.upgrade(settings.resolved_database_url)
    click.echo(f"database at revision {migrations.head_revision()}")
    sync_disclosures(settings)
    sync_templates(settings, force=False, quiet=True)
    sync_sequences(settings, force=False, quiet=True)


def sync_templates(settings: Settings, *, force: bool, quiet: bool) -> None:
    from nurture import clock
    from nurture.content import template_store
    from nurture.preview.drafts import lint_source

    services = services_or_exit(settings)

    def problems(channel: Channel, key: str, source: str) -> list[str]:
        return [str(f) for f in lint_source(services.studio, channel, key, source).errors]

    try:
        with services.sessions.begin() as session:
            lines = template_store.sync(
                session,
                services.templates.files,
                force=force,
                now=clock.utcnow(),
                problems=problems,
            )
    finally:
        services.close()
    _report("templates", [(str(line), line.outcome) for line in lines], quiet=quiet)


def sync_sequences(settings: Settings, *, force: bool, quiet: bool) -> None:
    """Import changed sequence files (issue 15 §1): a studio publish stays live unless forced."""
    from nurture import clock
    from nurture.program import sequence_store

    services = services_or_exit(settings)
    try:
        with services.sessions.begin() as session:
            lines = sequence_store.sync(
                session,
                settings.config_dir / "sequences",
                templates=services.templates.available(),
                force=force,
                now=clock.utcnow(),
            )
    finally:
        services.close()
    _report("sequences", [(str(line), line.outcome) for line in lines], quiet=quiet)


def _report(what: str, lines: list[tuple[str, str]], *, quiet: bool) -> None:
    """A sync's lines; ``quiet`` (db upgrade, make run): only what changed, or a count."""
    changed = [text for text, outcome in lines if outcome != "unchanged"]
    for text in [text for text, _ in lines] if not quiet else changed:
        click.echo(f"{what}: {text}")
    if quiet and not changed:
        click.echo(f"{what}: {len(lines)} unchanged")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Serve the web app (API, forms, webhooks, staff pages)."""
    import uvicorn

    from nurture.config.logs import configure_logging
    from nurture.web import create_app

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    services = services_or_exit(settings)
    record_disclosures(services)  # refuses to serve disclosure wording edited in place
    mismatch = port_mismatch(settings.public_url, port)
    if mismatch:
        log.warning("%s", mismatch)
    uvicorn.run(
        create_app(services),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        log_config=None,
        access_log=False,
    )


PLACEHOLDER_CONSEQUENCES = {
    "address": "marketing e-mail needs the clinic's real postal address (CAN-SPAM)",
    "on_call_phone": "crisis pages go to this number",
}


def placeholder_warnings(fields: Sequence[str], *, smtp: bool) -> list[str]:
    """One line per clinic.yaml field still marked a placeholder."""
    lines = []
    for name in fields:
        line = f"clinic.yaml's {name} is a placeholder: {PLACEHOLDER_CONSEQUENCES[name]}"
        if name == "address" and smtp:
            line += "; marketing e-mail is held until it is real"
        lines.append(line)
    return lines


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 32))
def run(host: str, port: int, concurrency: int) -> None:
    """Run everything (web + worker + beat) in one command: the embedded setup."""
    from nurture.supervisor import run_embedded

    # This process only watches: settings, database and templates are prepare-run's business.
    prepare = [sys.executable, "-m", "nurture", "prepare-run", "--host", host, "--port", str(port)]
    sys.exit(run_embedded([*prepare, "--concurrency", str(concurrency)]))


@cli.command("prepare-run", hidden=True)
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--concurrency", required=True, type=int)
@click.option("--plan", "plan_path", required=True, type=click.Path(path_type=Path))
def prepare_run(host: str, port: int, concurrency: int, plan_path: Path) -> None:
    """`nurture run`'s first child: check, migrate, sync, and write down what to start."""
    from nurture.config.logs import configure_logging
    from nurture.db import migrations
    from nurture.supervisor import Plan

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    services = services_or_exit(settings)  # refuse to start on a broken config file
    clinic = services.clinic
    services.close()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.secret()  # created once, before the children race to create it
    migrations.upgrade(settings.resolved_database_url)
    sync_disclosures(settings)
    sync_templates(settings, force=False, quiet=True)
    sync_sequences(settings, force=False, quiet=True)
    worker = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers",
        "worker",
        "--beat-thread",  # one process less than --beat (workers/__init__.py)
        "--queues",
        "dispatch,email,sms",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        settings.log_level,
        "--schedule",
        str(settings.var_dir / "celerybeat-schedule"),
    ]
    if settings.embedded_broker:
        # kombu's SQLAlchemy transport has no broadcast: gossip, mingle and heartbeats need it.
        worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    web = [sys.executable, "-m", "nurture", "serve", "--host", host, "--port", str(port)]
    outbox = (
        settings.resolved_outbox_dir
        if "outbox" in {settings.email_backend, settings.sms_backend}
        else None
    )
    public_url, follows = public_url_for_run(settings, host, port)
    for line in placeholder_warnings(clinic.placeholders, smtp=settings.email_backend == "smtp"):
        click.echo(f"nurture: warning: {line}", err=True)
    mismatch = port_mismatch(public_url, port)
    if mismatch:
        click.echo(f"nurture: warning: {mismatch}", err=True)
    announce = [f"nurture: sign-up form at {public_url}/consult"]
    if outbox is not None:
        announce.append(f"nurture: messages are written to {outbox}/")
    announce.append("nurture: Ctrl-C stops everything")
    # One metrics directory for both children: the web's /metrics adds up the worker's counters.
    metrics_dir = (settings.var_dir / "metrics" / "run").resolve()
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir)),
        "NURTURE_WORKER_METRICS_PORT": os.environ.get("NURTURE_WORKER_METRICS_PORT", "0"),
        # Quiet unless asked for: Celery's line per task and beat's per tick would scroll the
        # form's address and any warning off the newcomer's screen every few seconds.
        "NURTURE_LOG_TASKS": os.environ.get("NURTURE_LOG_TASKS", "0"),
    }
    if follows:  # links in messages (unsubscribe, preferences) must reach this server
        env["NURTURE_PUBLIC_URL"] = public_url
    Plan(
        children={"worker": worker, "web": web},
        env=env,
        log_level=settings.log_level,
        log_format=settings.log_format,
        announce=announce,
        listening_on=(host, port),
    ).write(plan_path)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"}  # noqa: S104


def public_url_for_run(settings: Settings, host: str, port: int) -> tuple[str, bool]:
    """The public URL `nurture run` serves under, and whether it follows the port: in the
    embedded setup, unless NURTURE_PUBLIC_URL was given, it is this host and port."""
    if "public_url" in settings.model_fields_set:
        return settings.public_url, False
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    return f"http://{shown}:{port}", True


def port_mismatch(public_url: str, port: int) -> str | None:
    """A warning when the public URL names this machine on another port than the web's: every
    link in a message would then point at nothing. (Behind a proxy the ports differ by design,
    and the public URL names the proxy, not this machine.)"""
    from urllib.parse import urlsplit

    parts = urlsplit(public_url)
    if parts.hostname not in LOOPBACK_NAMES:
        return None
    try:
        named = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if named == port:
        return None
    return (
        f"NURTURE_PUBLIC_URL is {public_url} but the web listens on port {port}: unsubscribe "
        f"and preferences links in messages will point at port {named}. Unset it, or make it "
        f"http://127.0.0.1:{port}."
    )
