"""`nurture sequences`: validate the sequence files, simulate one for a sample lead, see an A/B
test's results and promote its winner."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from nurture.cli.base import UsageProblem, cli, cli_actor, services_or_exit, settings_or_exit
from nurture.config.durations import format_duration


@cli.group()
def sequences() -> None:
    """Sequences: the files in config/sequences/ seed them, the studio publishes new versions."""


@sequences.command("validate")
def sequences_validate() -> None:
    """Check every sequence file; exit 2 listing each problem with file and line."""
    services = services_or_exit(settings_or_exit())
    try:
        files = services.sequences.files  # checked as they were loaded; no database needed
        steps = sum(len(s.steps) for s in files.by_key.values())
        click.echo(f"ok: {len(files.by_key)} sequence(s), {steps} step(s)")
    finally:
        services.close()


@sequences.command("sync")
@click.option(
    "--force", is_flag=True, help="publish changed files even over versions published in the studio"
)
def sequences_sync(force: bool) -> None:
    """Import sequence files whose content changed since they were last imported."""
    from nurture.cli.processes import sync_sequences

    sync_sequences(settings_or_exit(), force=force, quiet=False)


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
    from nurture.outbox import promotions
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
        promoted = {}
        if promotions.has_experiments(sequence):
            # A promoted A/B winner is what the planner sends now: the timeline shows it too.
            with services.read_sessions() as session:
                promoted = promotions.promotions(session, sequence.key)
        entries = simulate(
            sequence,
            sample,
            start=begin,
            consult_at=consult,
            writer=services.writer,
            policy=services.policy,
            promoted=promoted,
        )
        click.echo(
            format_timeline(sequence, sample, entries, start=begin, consult_at=consult), nl=False
        )
    finally:
        services.close()


@sequences.command("results")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="print the numbers as JSON")
def sequences_results(key: str, as_json: bool) -> None:
    """The A/B tests of sequence KEY: each variant's numbers and the decision."""
    import json

    from nurture.preview import experiment_results

    services = services_or_exit(settings_or_exit())
    try:
        sequence = services.catalog.by_key.get(key)
        if sequence is None:
            raise UsageProblem(
                f"no sequence {key!r}; known: {', '.join(sorted(services.catalog.by_key))}"
            )
        with services.read_sessions() as session:
            results = experiment_results.sequence_results(session, sequence, services.policy)
    finally:
        services.close()
    if not results:
        raise UsageProblem(f"{key} has no A/B-tested step")
    if as_json:
        click.echo(json.dumps([experiment_results.as_dict(r) for r in results], indent=2))
        return
    for result in results:
        click.echo(
            f"{sequence.key} / {result.step.key} ({result.step.channel.value}, booked within "
            f"{format_duration(result.window)})"
        )
        for arm in result.arms:
            interval = f"{arm.interval[0]:.1%}–{arm.interval[1]:.1%}" if arm.interval else "-"
            best = f"{arm.probability_best:.1%}" if arm.probability_best is not None else "-"
            click.echo(
                f"  {arm.variant.name:<8} {arm.variant.template:<28} reached {arm.reached:>6}"
                f"  booked {arm.booked:>5}  95% {interval:<13}  P(best) {best:>6}"
                f"  opt-outs {arm.opted_out}"
            )
        if result.promotion is not None:
            click.echo(f"  promoted: {result.promotion.variant} by {result.promotion.actor}")
        elif result.winner is not None:
            click.echo(f"  winner: {result.winner.name}. {result.decision.reason}")
        else:
            click.echo(f"  {result.decision.reason}")


@sequences.command("promote")
@click.argument("key")
@click.argument("step")
@click.argument("variant")
def sequences_promote(key: str, step: str, variant: str) -> None:
    """Make VARIANT, the called winner of STEP's A/B test in KEY, what every lead gets from the
    next planning on (audited as experiment.promoted); refused while no winner is called."""
    from nurture.preview import experiment_results

    services = services_or_exit(settings_or_exit())
    try:
        sequence = services.catalog.by_key.get(key)
        if sequence is None:
            raise UsageProblem(
                f"no sequence {key!r}; known: {', '.join(sorted(services.catalog.by_key))}"
            )
        with services.sessions.begin() as session:
            result = experiment_results.promote(
                session, sequence, step, variant, policy=services.policy, actor=cli_actor()
            )
    except experiment_results.PromotionRefusedError as error:
        raise UsageProblem(f"not promoted: {error}") from None
    finally:
        services.close()
    assert result.winner is not None
    click.echo(f"promoted: {key} / {step} sends {result.winner.template} (variant {variant})")


@sequences.command("history")
@click.argument("key")
def sequences_history(key: str) -> None:
    """Every version of sequence KEY, newest first: state, origin, author, note."""
    from nurture.content.staff_time import utc_text
    from nurture.program import sequence_store

    services = services_or_exit(settings_or_exit())
    try:
        with services.read_sessions() as session:
            rows = sequence_store.versions(session, key)
    finally:
        services.close()
    if not rows:
        raise UsageProblem(
            f"no stored version of {key!r} (nurture sequences sync imports config/sequences/)"
        )
    for row in rows:
        click.echo(
            f"v{row.version:<4} {row.state.value:<9} {row.origin:<4} {utc_text(row.created_at)}"
            f"  {row.author}{'  ' + row.note if row.note else ''}"
        )


@sequences.command("publish")
@click.argument("key")
@click.option("--version", "version", type=int, required=True)
@click.option(
    "--move",
    is_flag=True,
    help="move the leads enrolled now onto this version (default: they keep theirs)",
)
def sequences_publish(key: str, version: int, move: bool) -> None:
    """Publish a version of sequence KEY (a draft, or an older one to roll back); refused
    while it does not validate. The studio shows what changes for enrolled leads first."""
    from nurture import clock
    from nurture.config.yamlconf import ConfigError
    from nurture.db.versioning import VersionStateError
    from nurture.outbox import version_moves

    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            published = version_moves.publish_version(
                session,
                key,
                version,
                move=move,
                reviewed=None,
                templates=services.templates.available(),
                policy=services.policy,
                clinic_zone=services.clinic.zone,
                now=clock.utcnow(),
                actor=cli_actor(),
            )
    except ConfigError as refused:
        raise UsageProblem(f"not published:\n{refused}") from None
    except (LookupError, VersionStateError) as error:
        raise UsageProblem(f"not published: {error}") from None
    finally:
        services.close()
    click.echo(f"{key}: version {published.version} is live")
    if published.moved is not None:
        click.echo(
            f"{published.moved.active} enrolment(s) moved; the messages of "
            f"{published.moved.changed} changed"
        )
