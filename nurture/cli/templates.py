"""`nurture templates`: sync, lint, preview and publish message templates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nurture.db.models import Channel

from nurture.cli.base import UsageProblem, cli, cli_actor, services_or_exit, settings_or_exit
from nurture.cli.processes import sync_templates


@cli.group()
def templates() -> None:
    """Message templates: sync from files, lint, preview, publish."""


@templates.command("sync")
@click.option(
    "--force", is_flag=True, help="publish changed files even over versions published in the studio"
)
def templates_sync(force: bool) -> None:
    """Import template files whose content changed since they were last imported."""
    sync_templates(settings_or_exit(), force=force, quiet=False)


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
    from nurture.content.lint import lint_disclosures
    from nurture.preview.drafts import lint_current

    services = services_or_exit(settings_or_exit())
    try:
        known = services.templates.available()
        keys = [_template_key(n) for n in names] or sorted(known)
        failed = 0
        if not names:  # the consent wording the form shows makes promises too
            report = lint_disclosures(services.disclosures, services.policy)
            click.echo(f"config/disclosures.yaml: {'ok' if report.ok else 'errors'}")
            for finding in report.findings:
                click.echo(f"  {finding}")
            failed += not report.ok
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
        try:
            source = source_of(services.studio, channel, key, version)
        except LookupError as error:  # no such template, or no such version of it
            raise UsageProblem(str(error)) from None
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
            published = publish_version(services.studio, channel, key, version, author=cli_actor())
        except PublishRefusedError as refused:
            raise UsageProblem(f"not published:\n{refused}") from None
        except LookupError as error:
            raise UsageProblem(str(error)) from None
        click.echo(f"{channel.value}/{key}: version {published.version} is live")
    finally:
        services.close()
