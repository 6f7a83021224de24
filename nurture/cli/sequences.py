"""`nurture sequences`: validate the sequence files, simulate one for a sample lead."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from nurture.cli.base import UsageProblem, cli, services_or_exit, settings_or_exit


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
