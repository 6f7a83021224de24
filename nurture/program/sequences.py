"""Sequence definitions: one YAML file per sequence in ``config/sequences/`` (DESIGN.md §5).

A file that is wrong in any way refuses to load, with the file, line and reason of every
problem, so a typo never silently drops a reminder.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from nurture.config.durations import parse_duration
from nurture.config.yamlconf import ConfigError, ConfigProblem, YamlDocument, read_yaml, validate
from nurture.db.models import Channel, Purpose
from nurture.program.conditions import compile_condition

KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"


class LifecycleEvent(StrEnum):
    SIGNED_UP = "signed_up"
    CONSULT_BOOKED = "consult_booked"
    CONSULT_RESCHEDULED = "consult_rescheduled"
    CONSULT_CANCELLED = "consult_cancelled"
    CONSULT_COMPLETED = "consult_completed"
    NO_SHOW = "no_show"
    # The person started treatment: the funnel's last stage (issue 15 §2).
    BECAME_PATIENT = "became_patient"


class Anchor(StrEnum):
    ENROLLED_AT = "enrolled_at"
    CONSULT_AT = "consult_at"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and value == 0:
        return timedelta()
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r}: write it as text such as 2d or -24h")
    return parse_duration(value)


def _local_time(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 10:00 as sexagesimal 600
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str):
        raise ValueError(f'bad time {value!r}: write it as "HH:MM", e.g. "10:00"')
    try:
        hours, minutes = (int(part) for part in value.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValueError(f'bad time {value!r}: write it as "HH:MM", e.g. "10:00"') from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
LocalTime = Annotated[time, BeforeValidator(_local_time)]

# An A/B test compares two to four versions of a step (issue 15 §3): more arms split the leads
# so thin that no winner is ever called at a clinic's volume.
MIN_VARIANTS = 2
MAX_VARIANTS = 4


class Variant(BaseModel):
    """One arm of a step's A/B test: its name (what the message row records), its template,
    and its share of the leads relative to the other variants' weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Message.variant is String(40); letters, digits and dashes read well in a URL and a log.
    name: str = Field(pattern=r"^[A-Za-z0-9-]+$", max_length=40)
    template: str = Field(pattern=KEBAB, max_length=100)
    weight: int = Field(gt=0)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEBAB, max_length=64)
    channel: Channel
    purpose: Purpose
    # Exactly one of the two: one template, or an A/B test of two to four (``variants``).
    template: str | None = Field(default=None, pattern=KEBAB, max_length=100)
    variants: tuple[Variant, ...] | None = None
    offset: Duration
    anchor: Anchor = Anchor.ENROLLED_AT
    at: LocalTime | None = None
    not_after: Literal["consult_at"] | None = None
    when: str | None = None
    # A step that asks the lead to confirm: skipped once they have (replied C).
    confirm_request: bool = False

    @field_validator("when")
    @classmethod
    def _condition_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_condition(value)  # ConditionError is a ValueError: reported with the line
        return value

    @field_validator("variants")
    @classmethod
    def _a_real_test(cls, variants: tuple[Variant, ...] | None) -> tuple[Variant, ...] | None:
        if variants is None:
            return None
        if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
            raise ValueError(
                f"an A/B test has {MIN_VARIANTS} to {MAX_VARIANTS} variants, not {len(variants)}"
            )
        names = [variant.name for variant in variants]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"variant names must differ: {', '.join(map(repr, twice))} repeated")
        return variants

    @model_validator(mode="after")
    def _one_template_or_variants(self) -> Step:
        if self.template is not None and self.variants is not None:
            raise ValueError("give either template or variants, not both")
        if self.template is None and self.variants is None:
            raise ValueError("give a template (or variants for an A/B test)")
        return self

    @property
    def templates(self) -> tuple[str, ...]:
        """Every template the step may send: its one template, or each variant's."""
        if self.variants is not None:
            return tuple(variant.template for variant in self.variants)
        assert self.template is not None  # the validator above: one or the other
        return (self.template,)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants or () if v.name == name), None)

    @model_validator(mode="after")
    def _optin_is_a_text(self) -> Step:
        if self.purpose is Purpose.OPTIN and self.channel is not Channel.SMS:
            raise ValueError("purpose optin is the SMS opt-in confirmation; use channel sms")
        return self


class Sequence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEBAB, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    trigger: LifecycleEvent
    exit_on: list[LifecycleEvent] = Field(default_factory=list)
    # After an enrolment ends, may the lead enter again (after the cool-down)?
    reenter: bool = False
    cooldown: Duration = timedelta(0)
    steps: list[Step] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_step_keys(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for step in steps:
            if step.key in seen:
                raise ValueError(f"duplicate step key {step.key!r}")
            seen.add(step.key)
        return steps


class Catalog:
    """The live version of every sequence, by key, and the earlier versions that enrolments
    may still be on (an enrolment keeps the version it began with: issue 15 §1)."""

    def __init__(
        self, sequences: Collection[Sequence], *, earlier: Collection[Sequence] = ()
    ) -> None:
        self.by_key = {sequence.key: sequence for sequence in sequences}
        self.versions = {(s.key, s.version): s for s in (*earlier, *sequences)}

    def triggered_by(self, event: LifecycleEvent) -> list[Sequence]:
        return [sequence for sequence in self.by_key.values() if sequence.trigger is event]

    def exited_by(self, event: LifecycleEvent) -> list[Sequence]:
        return [sequence for sequence in self.by_key.values() if event in sequence.exit_on]

    def version(self, key: str, version: int | None) -> Sequence | None:
        """The version an enrolment is on. When that version is not known (an enrolment that
        began before sequences were kept in the database), the live one, as it was then."""
        found = self.versions.get((key, version)) if version is not None else None
        return found or self.by_key.get(key)

    def every_version(self) -> list[Sequence]:
        return list(self.versions.values())

    def step(self, sequence_key: str, step_key: str, version: int | None = None) -> Step | None:
        sequence = self.version(sequence_key, version)
        if sequence is None:
            return None
        return next((step for step in sequence.steps if step.key == step_key), None)


def _name_steps(problems: list[ConfigProblem], data: object) -> list[ConfigProblem]:
    """'steps[2].offset: …' → "steps[2] (booking-nudge).offset: …": people know steps by key."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        return problems
    keys = [step.get("key") if isinstance(step, dict) else None for step in steps]
    named = []
    for problem in problems:
        reason = problem.reason
        for index, key in enumerate(keys):
            if key and reason.startswith(f"steps[{index}]"):
                reason = f"steps[{index}] ({key})" + reason.removeprefix(f"steps[{index}]")
                break
        named.append(ConfigProblem(problem.path, problem.line, reason))
    return named


def _missing_templates(
    document: YamlDocument,
    sequence: Sequence,
    templates: Collection[tuple[Channel, str]],
) -> list[ConfigProblem]:
    """A step (or a variant of one) naming a template its channel does not have."""
    problems = []
    for index, step in enumerate(sequence.steps):
        where: list[tuple[tuple[str | int, ...], str]] = (
            [(("steps", index, "template"), step.template)] if step.template is not None else []
        )
        where += [
            (("steps", index, "variants", number, "template"), variant.template)
            for number, variant in enumerate(step.variants or ())
        ]
        for location, key in where:
            if (step.channel, key) not in templates:
                problem = document.problem(location, f"no {step.channel.value} template {key!r}")
                problems.extend(_name_steps([problem], document.data))
    return problems


def check_sequence(
    document: YamlDocument, *, templates: Collection[tuple[Channel, str]] | None = None
) -> Sequence:
    """Validate one parsed file (or studio version) as a sequence; raise ConfigError listing
    every problem with its line. ``templates``, when given, is the set of (channel, key) that
    exist; a step naming any other template is an error."""
    try:
        sequence = validate(document, Sequence)
    except ConfigError as error:
        raise ConfigError(_name_steps(error.problems, document.data)) from None
    if templates is not None:
        problems = _missing_templates(document, sequence, templates)
        if problems:
            raise ConfigError(problems)
    return sequence


def load_catalog(
    directory: Path, *, templates: Collection[tuple[Channel, str]] | None = None
) -> Catalog:
    """Load every ``*.yaml`` in ``directory``; raise ConfigError listing all problems."""
    if not directory.is_dir():
        raise ConfigError([ConfigProblem(directory, None, "sequence directory does not exist")])
    problems: list[ConfigProblem] = []
    loaded: dict[str, tuple[YamlDocument, Sequence]] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            document = read_yaml(path)
            sequence = check_sequence(document, templates=templates)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if sequence.key in loaded:
            other = loaded[sequence.key][0].path
            problems.append(document.problem(("key",), f"{sequence.key!r} is also used by {other}"))
            continue
        loaded[sequence.key] = (document, sequence)
    if problems:
        raise ConfigError(problems)
    return Catalog([sequence for _, sequence in loaded.values()])
