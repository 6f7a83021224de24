"""`nurture ops`: the ops console from a shell (status, pause, resume, retry, settle …)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:
    from nurture.runtime import Services

from nurture.cli.base import UsageProblem, cli, cli_actor, services_or_exit, settings_or_exit


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
            s, scope, value, reason=reason, actor=cli_actor(), now=now, catalog=svc.catalog
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
    actor = cli_actor()
    skipped = _ops_action(
        lambda s, svc, now: operations.end_pause(s, pause_id, overdue=mode, actor=actor, now=now)
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
            s, ids=list(ids) or None, error_code=code, actor=cli_actor(), now=now
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
            s, message_id, sent=True, provider_id=provider_id, actor=cli_actor(), now=now
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
            actor=cli_actor(),
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
            session, older_than=timedelta(days=days), actor=cli_actor(), now=now
        )

    click.echo(f"{_ops_action(purge)} message bodies deleted")
