"""`nurture consent`: a person's consent evidence, and the disclosure versions it refers to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nurture.config.settings import Settings
    from nurture.runtime import Services

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
    """Print every consent event of LEAD (its id, e-mail or phone), for an audit or a dispute:
    the person, and for each event its disclosure version and exact wording."""
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


def record_disclosures(services: Services) -> None:
    """Record the version config/disclosures.yaml names, the first time a process starts with
    it; exit 2 when its wording differs from the wording on record for that version (an edit
    in place of words people may already have agreed to)."""
    from sqlalchemy import inspect

    from nurture import clock
    from nurture.consent import disclosures

    if not inspect(services.engine).has_table(disclosures.DISCLOSURE_VERSIONS.name):
        click.echo("disclosures: not recorded, the database is not upgraded (nurture db upgrade)")
        return
    path = services.settings.config_dir / "disclosures.yaml"
    try:
        with services.sessions.begin() as session:
            recorded = disclosures.record_current(session, services.disclosures, now=clock.utcnow())
    except disclosures.DisclosureEditedError as error:
        raise UsageProblem(f"configuration error:\n{path}: {error}") from None
    if recorded:
        click.echo(f"disclosures: recorded version {services.disclosures.version}")


def sync_disclosures(settings: Settings) -> None:
    """:func:`record_disclosures` for a command that has no services of its own."""
    services = services_or_exit(settings)
    try:
        record_disclosures(services)
    finally:
        services.close()
