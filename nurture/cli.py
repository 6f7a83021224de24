"""The `nurture` command. Wrong input exits 2 with a message that says what and where."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:
    from nurture.config.settings import Settings
    from nurture.db.models import Channel
    from nurture.runtime import Services

# Each command imports what it needs: `nurture run` stays a bare Python that only watches its
# children, and no command pays for the whole application unless it uses it.

log = logging.getLogger("nurture")


class UsageProblem(click.ClickException):
    """A problem with the user's input or configuration: printed plainly, exit code 2."""

    exit_code = 2


def settings_or_exit() -> Settings:
    from pydantic import ValidationError

    from nurture.config.settings import get_settings

    try:
        return get_settings()
    except ValidationError as error:
        lines = []
        for item in error.errors(include_url=False):
            name = (
                "NURTURE_" + "_".join(str(p) for p in item["loc"]).upper()
                if item["loc"]
                else "settings"
            )
            lines.append(f"  {name}: {item['msg'].removeprefix('Value error, ')}")
        raise UsageProblem("configuration error:\n" + "\n".join(lines)) from None


def services_or_exit(settings: Settings) -> Services:
    from nurture.config.yamlconf import ConfigError
    from nurture.runtime import build_services

    try:
        return build_services(settings)
    except ConfigError as error:
        raise UsageProblem(f"configuration error:\n{error}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """nurture: consent-first e-mail and SMS lead nurture."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration, then import changed template files (templates sync)."""
    from nurture.config.logs import configure_logging
    from nurture.db import migrations

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    migrations.upgrade(settings.resolved_database_url)
    click.echo(f"database at revision {migrations.head_revision()}")
    _sync_templates(settings, force=False, quiet=True)


def _sync_templates(settings: Settings, *, force: bool, quiet: bool) -> None:
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
    changed = [line for line in lines if line.outcome != "unchanged"]
    for line in lines if not quiet else changed:
        click.echo(f"templates: {line}")
    if quiet and not changed:
        click.echo(f"templates: {len(lines)} unchanged")


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
    uvicorn.run(
        create_app(services),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        log_config=None,
        access_log=False,
    )


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
    services_or_exit(settings).close()  # refuse to start on a broken config file
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.secret()  # created once, before the children race to create it
    migrations.upgrade(settings.resolved_database_url)
    _sync_templates(settings, force=False, quiet=True)
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
    click.echo(f"nurture: sign-up form at http://{host}:{port}/consult")
    if outbox is not None:
        click.echo(f"nurture: messages are written to {outbox}/")
    click.echo("nurture: Ctrl-C stops everything")
    # One metrics directory for both children: the web's /metrics adds up the worker's counters.
    metrics_dir = (settings.var_dir / "metrics" / "run").resolve()
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir)),
        "NURTURE_WORKER_METRICS_PORT": os.environ.get("NURTURE_WORKER_METRICS_PORT", "0"),
    }
    Plan(
        children={"worker": worker, "web": web},
        env=env,
        log_level=settings.log_level,
        log_format=settings.log_format,
    ).write(plan_path)


@cli.group()
def sequences() -> None:
    """Sequence definitions (config/sequences/*.yaml)."""


@sequences.command("validate")
def sequences_validate() -> None:
    """Check every sequence file; exit 2 listing each problem with file and line."""
    services = services_or_exit(settings_or_exit())
    try:
        steps = sum(len(s.steps) for s in services.catalog.by_key.values())
        click.echo(f"ok: {len(services.catalog.by_key)} sequence(s), {steps} step(s)")
    finally:
        services.close()


@sequences.command("simulate")
@click.argument("key")
@click.option(
    "--lead", "lead_file", type=click.Path(path_type=Path), help="lead.yaml (any field of a lead)"
)
@click.option("--start", help="when the sequence starts (ISO 8601 with offset); default now")
@click.option(
    "--consult-at", "consult_at", help="the consult time for reminder steps (ISO 8601 with offset)"
)
def sequences_simulate(
    key: str, lead_file: Path | None, start: str | None, consult_at: str | None
) -> None:
    """Print the timeline KEY would give a lead: sends nothing, stores nothing."""
    from nurture import clock
    from nurture.config.yamlconf import ConfigError
    from nurture.preview.simulation import format_timeline, load_sample_lead, simulate

    def instant(name: str, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise UsageProblem(
                f"{name}: {value!r} is not ISO 8601, e.g. 2026-03-03T09:00:00-07:00"
            ) from None
        if parsed.tzinfo is None:
            raise UsageProblem(f"{name}: give an offset, e.g. {value}-07:00")
        return parsed

    services = services_or_exit(settings_or_exit())
    try:
        sequence = services.catalog.by_key.get(key)
        if sequence is None:
            known = ", ".join(sorted(services.catalog.by_key))
            raise UsageProblem(f"no sequence {key!r}; known: {known}")
        try:
            sample = load_sample_lead(lead_file)
        except ConfigError as error:
            raise UsageProblem(f"lead file:\n{error}") from None
        begin = instant("--start", start) or clock.utcnow()
        consult = instant("--consult-at", consult_at)
        entries = simulate(
            sequence,
            sample,
            start=begin,
            consult_at=consult,
            writer=services.writer,
            policy=services.policy,
        )
        click.echo(
            format_timeline(sequence, sample, entries, start=begin, consult_at=consult), nl=False
        )
    finally:
        services.close()


@cli.group()
def templates() -> None:
    """Message templates: sync from files, lint, preview, publish."""


@templates.command("sync")
@click.option(
    "--force", is_flag=True, help="publish changed files even over versions published in the studio"
)
def templates_sync(force: bool) -> None:
    """Import template files whose content changed since they were last imported."""
    _sync_templates(settings_or_exit(), force=force, quiet=False)


def _template_key(value: str) -> tuple[Channel, str]:
    from nurture.db.models import Channel

    channel, _, key = value.partition("/")
    try:
        return Channel(channel), key
    except ValueError:
        raise UsageProblem(f"{value!r}: name a template as email/<key> or sms/<key>") from None


@templates.command("lint")
@click.argument("names", nargs=-1, metavar="[CHANNEL/KEY]...")
def templates_lint(names: tuple[str, ...]) -> None:
    """Check templates (all, or the ones named); exit 2 when any has an error."""
    from nurture.preview.drafts import lint_current

    services = services_or_exit(settings_or_exit())
    try:
        known = services.templates.available()
        keys = [_template_key(n) for n in names] or sorted(known)
        failed = 0
        for channel, key in keys:
            if (channel, key) not in known:
                raise UsageProblem(f"no template {channel.value}/{key}")
            report = lint_current(services.studio, channel, key)
            status = "ok" if not report.findings else ("errors" if report.errors else "warnings")
            click.echo(f"{channel.value}/{key}: {status}")
            for finding in report.findings:
                click.echo(f"  {finding}")
            failed += not report.ok
    finally:
        services.close()
    if failed:
        raise UsageProblem(f"{failed} template(s) have errors")


@templates.command("preview")
@click.argument("name", metavar="CHANNEL/KEY")
@click.option(
    "--lead", "lead_file", type=click.Path(path_type=Path), help="lead.yaml (as for simulate)"
)
@click.option(
    "--version", "version", type=int, help="a version number (default: the published one)"
)
def templates_preview(name: str, lead_file: Path | None, version: int | None) -> None:
    """Render a template for a sample lead and print it (text part for e-mail)."""
    from nurture import clock
    from nurture.config.yamlconf import ConfigError
    from nurture.content.rendering import RenderError
    from nurture.preview.drafts import preview, source_of
    from nurture.preview.simulation import load_sample_lead

    channel, key = _template_key(name)
    services = services_or_exit(settings_or_exit())
    try:
        try:
            sample = load_sample_lead(lead_file)
        except ConfigError as error:
            raise UsageProblem(f"lead file:\n{error}") from None
        source = source_of(services.studio, channel, key, version)
        lead = sample.to_lead(consult_at=None, now=clock.utcnow())
        try:
            shown = preview(services.studio, channel, key, source, lead)
        except RenderError as error:
            raise UsageProblem(str(error)) from None
        if shown.subject is not None:
            click.echo(f"Subject: {shown.subject}\n")
        click.echo(shown.text)
        if shown.sms is not None:
            shape = shown.sms
            click.echo(f"\n[{shape.encoding}, {shape.units} units, {shape.segments} segment(s)]")
    finally:
        services.close()


@templates.command("publish")
@click.argument("name", metavar="CHANNEL/KEY")
@click.option("--version", "version", type=int, required=True)
def templates_publish(name: str, version: int) -> None:
    """Publish a version (a draft, or an older one to roll back); refused on lint errors."""
    from nurture.preview.drafts import PublishRefusedError, publish_version

    channel, key = _template_key(name)
    services = services_or_exit(settings_or_exit())
    try:
        try:
            published = publish_version(services.studio, channel, key, version, author="cli")
        except PublishRefusedError as refused:
            raise UsageProblem(f"not published:\n{refused}") from None
        except LookupError as error:
            raise UsageProblem(str(error)) from None
        click.echo(f"{channel.value}/{key}: version {published.version} is live")
    finally:
        services.close()


@cli.group()
def users() -> None:
    """Staff accounts for the admin UI."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["marketing", "ops", "admin"]), required=True)
@click.option("--phone", help="mobile number for 'send test to me' texts")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_add(email: str, role: str, phone: str | None, password_stdin: bool) -> None:
    """Create a staff user (or reset their password and role). The password is prompted for."""
    from nurture import staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            user, created = staff.add_user(
                session,
                email,
                password,
                role=role,
                phone=phone,
                actor="cli",
                clinic_name=services.clinic.name,
            )
    except staff.StaffError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()
    click.echo(f"{'created' if created else 'updated'} {user.email} ({user.role.value})")


@cli.group()
def ops() -> None:
    """Operations: status, kill switches, retries, settling unknown rows, purging bodies."""


def _ops_services() -> Services:
    return services_or_exit(settings_or_exit())


@ops.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ops_status(as_json: bool) -> None:
    """Queues, workers, the outbox by status, lateness, failures, pauses."""
    import json

    from nurture import clock
    from nurture import ops as operations

    services = _ops_services()
    try:
        queues = services.broker.depths()
        with services.read_sessions() as session:
            snapshot = operations.status(
                session, catalog=services.catalog, queues=queues, now=clock.utcnow()
            )
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(snapshot.as_dict(), default=str, indent=2))
        return
    click.echo(_status_text(snapshot))


def _status_text(snapshot: Any) -> str:
    def fmt(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds:.0f}s"

    lines = [f"nurture status at {snapshot.at:%Y-%m-%d %H:%M:%S} UTC", ""]
    queues = ", ".join(
        f"{q} {'not available' if d is None else d}" for q, d in snapshot.queues.items()
    )
    lines.append(f"queues: {queues}")
    lines.append(
        f"workers alive: {len(snapshot.workers)}"
        + "".join(f"\n  {w['hostname']} (pid {w['pid']}, {w['queues']})" for w in snapshot.workers)
    )
    late = snapshot.lateness
    lines.append(
        f"due now: {late.due_now}; lateness p50 {fmt(late.p50_seconds)}, "
        f"p95 {fmt(late.p95_seconds)}, max {fmt(late.max_seconds)}; "
        f"oldest scheduled {late.oldest_scheduled or '-'}"
    )
    lines.append(f"sent in the last hour: {sum(snapshot.sends_per_minute)}")
    lines.append("messages:")
    for state, channels in snapshot.counts.items():
        if any(channels.values()):
            lines.append(f"  {state:<12} " + "  ".join(f"{c} {n}" for c, n in channels.items()))
    if snapshot.retrying_by_code:
        lines.append(
            "waiting to retry, by code: "
            + ", ".join(f"{c}: {n}" for c, n in snapshot.retrying_by_code.items())
        )
    if snapshot.failures_by_code:
        lines.append(
            "failures (24 h) by code: "
            + ", ".join(f"{c}: {n}" for c, n in snapshot.failures_by_code.items())
        )
    lines.append(f"unknown rows: {len(snapshot.unknown)}; held by pauses: {snapshot.held_by_pause}")
    for pause in snapshot.pauses:
        lines.append(
            f"  PAUSED #{pause['id']} {pause['scope']} {pause['value'] or ''}: {pause['reason']} "
            f"({pause['by']}, since {pause['since']})"
        )
    lines.append("sequences: active / pending / sent 24 h / failed 24 h")
    for line in snapshot.sequences:
        lines.append(
            f"  {line.key:<24} {line.active_enrollments:>6} {line.pending_rows:>8} "
            f"{line.sent_24h:>6} {line.failed_24h:>6}"
        )
    return "\n".join(lines)


def _ops_action(action: Any) -> Any:
    from nurture import clock
    from nurture import ops as operations

    services = _ops_services()
    try:
        with services.sessions.begin() as session:
            return action(session, services, clock.utcnow())
    except operations.OpsError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()


@ops.command("pause")
@click.argument("scope", type=click.Choice(["all", "channel", "sequence"]))
@click.argument("value", required=False)
@click.option("--reason", required=True, help="why: shown to everyone who looks")
def ops_pause(scope: str, value: str | None, reason: str) -> None:
    """Stop sending: everything (all), one channel (email|sms) or one sequence (its key)."""
    from nurture import ops as operations

    pause = _ops_action(
        lambda s, svc, now: operations.start_pause(
            s, scope, value, reason=reason, actor="cli", now=now, catalog=svc.catalog
        )
    )
    click.echo(f"paused #{pause.id}: {scope} {value or ''}".rstrip())


@ops.command("resume")
@click.argument("pause_id", type=int)
@click.option(
    "--overdue",
    type=click.Choice(["send", "skip"]),
    required=True,
    help="what to do with rows that fell due while paused",
)
def ops_resume(pause_id: int, overdue: str) -> None:
    """Lift a pause; overdue rows are sent now (send) or skipped as "paused past due" (skip)."""
    from nurture import ops as operations

    mode: Literal["send", "skip"] = "send" if overdue == "send" else "skip"
    skipped = _ops_action(
        lambda s, svc, now: operations.end_pause(s, pause_id, overdue=mode, actor="cli", now=now)
    )
    click.echo(
        f"resumed #{pause_id}"
        + (f"; {skipped} overdue row(s) skipped" if overdue == "skip" else "")
    )


@ops.command("retry")
@click.option("--id", "ids", type=int, multiple=True, help="a failed message id (repeatable)")
@click.option("--code", "code", help="every failed message with this error code")
def ops_retry(ids: tuple[int, ...], code: str | None) -> None:
    """Put failed messages back on the schedule, due now."""
    from nurture import ops as operations

    count = _ops_action(
        lambda s, svc, now: operations.retry_failed(
            s, ids=list(ids) or None, error_code=code, actor="cli", now=now
        )
    )
    click.echo(f"{count} message(s) scheduled again")


@ops.command("settle")
@click.argument("message_id", type=int)
@click.option(
    "--provider-id", required=True, help="the provider's id for it (Twilio SM…, a Message-ID)"
)
def ops_settle(message_id: int, provider_id: str) -> None:
    """Record an `unknown` message as sent."""
    from nurture import ops as operations

    _ops_action(
        lambda s, svc, now: operations.settle_unknown(
            s, message_id, sent=True, provider_id=provider_id, actor="cli", now=now
        )
    )
    click.echo(f"message {message_id} settled as sent")


@ops.command("resend")
@click.argument("message_id", type=int)
@click.option(
    "--yes-it-may-duplicate", "confirm", is_flag=True, help="required: the person may get it twice"
)
def ops_resend(message_id: int, confirm: bool) -> None:
    """Send an `unknown` message again (it may already have arrived)."""
    from nurture import ops as operations

    _ops_action(
        lambda s, svc, now: operations.settle_unknown(
            s,
            message_id,
            sent=False,
            provider_id=None,
            actor="cli",
            now=now,
            confirm_duplicate=confirm,
        )
    )
    click.echo(f"message {message_id} scheduled again")


@ops.command("reconcile")
def ops_reconcile() -> None:
    """Ask the provider about `unknown` texts and settle the ones it has."""
    from nurture import ops as operations

    count = _ops_action(lambda s, svc, now: operations.reconcile_unknown(s, svc.sms, now=now))
    click.echo(f"{count} unknown text(s) settled")


@ops.command("purge")
@click.option(
    "--older-than-days", type=click.IntRange(1), help="default: NURTURE_BODY_RETENTION_DAYS"
)
def ops_purge(older_than_days: int | None) -> None:
    """Delete the text of old messages (metadata and audit stay)."""
    from datetime import timedelta

    from nurture import ops as operations

    def purge(session: Any, services: Services, now: datetime) -> int:
        days = older_than_days or services.settings.body_retention_days
        return operations.purge_bodies(
            session, older_than=timedelta(days=days), actor="cli", now=now
        )

    click.echo(f"{_ops_action(purge)} message bodies deleted")


@cli.group()
def consent() -> None:
    """The consent ledger."""


@consent.command("export")
@click.argument("lead")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
def consent_export(lead: str, fmt: str) -> None:
    """Print every consent event of LEAD (its id, e-mail or phone), for an audit or a dispute."""
    from nurture.leads.consent_export import export
    from nurture.leads.intake import find_lead

    settings = settings_or_exit()
    services = services_or_exit(settings)
    try:
        with services.sessions() as session:
            found = find_lead(session, lead)
            if found is None:
                raise UsageProblem(f"no lead matches {lead!r} (give its id, e-mail or phone)")
            click.echo(export(session, found, fmt), nl=False)
    finally:
        services.close()


@cli.group()
def leads() -> None:
    """Leads: lifecycle events for staff without the API."""


@leads.command("event")
@click.argument("lead")
@click.argument("event_type", metavar="TYPE")
@click.option(
    "--at", "at", default=None, help="consult time, ISO 8601 with offset (booked, rescheduled)"
)
def leads_event(lead: str, event_type: str, at: str | None) -> None:
    """Record a lifecycle event (consult_booked, consult_rescheduled, consult_cancelled,
    consult_completed, no_show) for LEAD (its id, e-mail or phone)."""
    from nurture import clock
    from nurture.leads.intake import find_lead
    from nurture.leads.lifecycle import EventError, apply_event, parse_event_type

    try:
        event = parse_event_type(event_type)
        consult_at = datetime.fromisoformat(at) if at else None
    except EventError as error:
        raise UsageProblem(str(error)) from None
    except ValueError:
        raise UsageProblem(
            f"--at: {at!r} is not ISO 8601, e.g. 2026-03-03T14:30:00-07:00"
        ) from None
    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            found = find_lead(session, lead)
            if found is None:
                raise UsageProblem(f"no lead matches {lead!r} (give its id, e-mail or phone)")
            result = apply_event(
                session,
                found,
                event,
                consult_at=consult_at,
                catalog=services.catalog,
                clinic_zone=services.clinic.zone,
                now=clock.utcnow(),
                actor="cli",
            )
    except EventError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()
    when = result.consult_at.isoformat() if result.consult_at else "none"
    click.echo(
        f"lead {result.lead_id}: stage {result.stage.value}, consult {when}"
        + ("" if result.changed else " (nothing changed: the same event was already recorded)")
    )
    for key in result.exited:
        click.echo(f"  exited {key}")
    for key in result.enrolled:
        click.echo(f"  enrolled in {key}")


def main() -> None:
    try:
        cli(prog_name="nurture", standalone_mode=True)
    except Exception as error:
        # Only a command that opened a database can have raised its errors: looking them up
        # (not importing SQLAlchemy) keeps `nurture run`'s supervisor free of it.
        sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_errors is None or not isinstance(
            error, (sqlalchemy_errors.OperationalError, sqlalchemy_errors.ProgrammingError)
        ):
            raise
        # Usually a database that is not there or not migrated: say so, without a stack.
        click.echo(
            f"database error: {error.orig}\nIs NURTURE_DATABASE_URL right, and has "
            "`nurture db upgrade` run?",
            err=True,
        )
        sys.exit(2)
