"""`nurture consent`: a person's consent evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from nurture.cli.base import UsageProblem, cli, services_or_exit, settings_or_exit


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
    from nurture.consent.export import export
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
