"""`nurture leads`: a lead's story at a glance, and lifecycle events recorded by hand."""

from __future__ import annotations

from datetime import datetime

import click

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
    consult_completed, no_show, became_patient) for LEAD (its id, e-mail or phone)."""
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


@leads.command("show")
@click.argument("lead")
def leads_show(lead: str) -> None:
    """Who LEAD is (its id, e-mail or phone), what they agreed to, and each message still to
    go: when (their time and UTC, by the sending hours) and why then."""
    from nurture import clock
    from nurture.db.models import PENDING_STATUSES
    from nurture.leads.intake import find_lead
    from nurture.leads.story import load_story
    from nurture.outbox.expected_send import expected_send

    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions() as session:
            found = find_lead(session, lead)
            if found is None:
                raise UsageProblem(f"no lead matches {lead!r} (give its id, e-mail or phone)")
            story = load_story(session, found.id, clinic_zone=services.clinic.zone)
            assert story is not None
            lines = [
                f"{story.name} ({found.id}), stage {found.stage.value}",
                f"time zone {story.zone.key}: {story.zone_origin}",
                "consent: "
                + "; ".join(
                    f"{channel} "
                    + (", ".join(p for p, granted in purposes.items() if granted) or "none")
                    for channel, purposes in story.consent.items()
                ),
            ]
            pending = sorted(
                (m for m in story.messages if m.status in PENDING_STATUSES),
                key=lambda m: m.due_at,
            )
            lines.append(f"pending messages: {len(pending) or 'none'}")
            now = clock.utcnow()
            for message in pending:
                expected = expected_send(
                    message,
                    found,
                    policy=services.policy,
                    clinic_zone=services.clinic.zone,
                    now=now,
                )
                when = "never"
                if expected.at is not None:
                    local = expected.at.astimezone(story.zone)
                    when = f"{local:%a %Y-%m-%d %H:%M} their time ({expected.at:%H:%M} UTC)"
                lines.append(
                    f"  #{message.id} {message.channel.value} {message.purpose.value}"
                    f" {message.template_key}: {message.status.value}, goes {when}:"
                    f" {expected.why}"
                )
    finally:
        services.close()
    for line in lines:
        click.echo(line)
