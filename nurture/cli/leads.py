"""`nurture leads`: lifecycle events recorded by hand."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from nurture.cli.base import UsageProblem, cli, cli_actor, services_or_exit, settings_or_exit


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
                actor=cli_actor(),
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
