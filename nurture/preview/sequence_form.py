"""The sequence editor's form (issue 15 §1): a sequence as plain form fields and back, the
step buttons (add, remove, move), and each validation problem placed next to the field it names.

Pure: no database, no web framework. The form keeps whatever was typed, valid or not (every
save is a version, and publishing is what refuses an invalid one), so every value here is text
until :func:`to_data` writes the dict a YAML file would hold, in the files' own field order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from nurture.config.durations import format_duration
from nurture.config.yamlconf import ConfigProblem
from nurture.program.sequences import Sequence

# How many steps (and variants of one step) a form may carry: far above any real sequence,
# low enough that a forged form cannot make the page build thousands of fieldsets.
MAX_STEPS = 60
MAX_VARIANTS_IN_FORM = 8
MAX_TEXT = 2_000

STEP_FIELDS = (
    "key",
    "channel",
    "purpose",
    "template",
    "anchor",
    "offset",
    "at",
    "not_after",
    "when",
    "confirm_request",
)
VARIANT_FIELDS = ("name", "template", "weight")


class FormError(ValueError):
    """The posted fields are not a form this editor made (a forged or broken request)."""


@dataclass
class VariantForm:
    name: str = ""
    template: str = ""
    weight: str = ""

    def blank(self) -> bool:
        return not (self.name or self.template or self.weight)


@dataclass
class StepForm:
    key: str = ""
    channel: str = ""
    purpose: str = ""
    template: str = ""
    variants: list[VariantForm] = field(default_factory=list)
    anchor: str = ""
    offset: str = ""
    at: str = ""
    not_after: str = ""
    when: str = ""
    confirm_request: bool = False


@dataclass
class SequenceForm:
    name: str = ""
    trigger: str = ""
    exit_on: list[str] = field(default_factory=list)
    reenter: bool = False
    cooldown: str = ""
    steps: list[StepForm] = field(default_factory=list)


# -- from what is stored ---------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


def _duration_text(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return "0s"  # the files may write a bare 0
    return _text(value)


def _time_text(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 sexagesimal: 10:00 → 600
        return f"{value // 60:02d}:{value % 60:02d}"
    return _text(value)


def _variant_from(data: object) -> VariantForm:
    if not isinstance(data, Mapping):
        return VariantForm()
    return VariantForm(
        name=_text(data.get("name")),
        template=_text(data.get("template")),
        weight=_text(data.get("weight")),
    )


def _step_from(data: object) -> StepForm:
    if not isinstance(data, Mapping):
        return StepForm()
    variants = data.get("variants")
    return StepForm(
        key=_text(data.get("key")),
        channel=_text(data.get("channel")),
        purpose=_text(data.get("purpose")),
        template=_text(data.get("template")),
        variants=[_variant_from(v) for v in variants] if isinstance(variants, list | tuple) else [],
        anchor=_text(data.get("anchor")),
        offset=_duration_text(data.get("offset")),
        at=_time_text(data.get("at")),
        not_after=_text(data.get("not_after")),
        when=_text(data.get("when")),
        confirm_request=data.get("confirm_request") is True,
    )


def from_data(data: object) -> SequenceForm:
    """The form for a version's YAML as parsed (a dict, or anything a broken draft holds)."""
    if not isinstance(data, Mapping):
        return SequenceForm()
    exit_on = data.get("exit_on")
    steps = data.get("steps")
    return SequenceForm(
        name=_text(data.get("name")),
        trigger=_text(data.get("trigger")),
        exit_on=[_text(e) for e in exit_on] if isinstance(exit_on, list) else [],
        reenter=data.get("reenter") is True,
        cooldown=_duration_text(data.get("cooldown")),
        steps=[_step_from(s) for s in steps] if isinstance(steps, list | tuple) else [],
    )


def sequence_data(sequence: Sequence) -> dict[str, object]:
    """A loaded sequence as the dict its file would hold (for one not in the database yet)."""
    return to_data(from_data(sequence.model_dump(mode="python")), sequence.key, sequence.version)


# -- from the posted form ------------------------------------------------------------------

_STEP_NAME = re.compile(r"^steps-(\d{1,4})-(\w+)$")
_VARIANT_NAME = re.compile(r"^steps-(\d{1,4})-variants-(\d{1,3})-(\w+)$")


def _clip(value: str) -> str:
    return value.replace("\r\n", "\n")[:MAX_TEXT]


def from_fields(items: Iterable[tuple[str, str]]) -> SequenceForm:
    """The form as posted: ``name``, ``trigger``, ``exit_on`` (repeated), ``reenter``,
    ``cooldown``, then ``steps-<i>-<field>`` and ``steps-<i>-variants-<j>-<field>``; steps in
    the order of their numbers. FormError for more steps than a real sequence has."""
    top: dict[str, str] = {}
    exit_on: list[str] = []
    steps: dict[int, dict[str, str]] = {}
    variants: dict[tuple[int, int], dict[str, str]] = {}
    for name, raw in items:
        value = _clip(raw)
        if name == "exit_on":
            if value and value not in exit_on:
                exit_on.append(value)
        elif found := _VARIANT_NAME.match(name):
            if found.group(3) in VARIANT_FIELDS:
                slot = (int(found.group(1)), int(found.group(2)))
                variants.setdefault(slot, {})[found.group(3)] = value
                steps.setdefault(slot[0], {})
        elif found := _STEP_NAME.match(name):
            if found.group(2) in (*STEP_FIELDS, "present"):
                steps.setdefault(int(found.group(1)), {})[found.group(2)] = value
        elif name in ("name", "trigger", "reenter", "cooldown"):
            top[name] = value
    if len(steps) > MAX_STEPS:
        raise FormError(f"a sequence has at most {MAX_STEPS} steps in the editor")
    form = SequenceForm(
        name=top.get("name", "").strip(),
        trigger=top.get("trigger", "").strip(),
        exit_on=exit_on,
        reenter=top.get("reenter") in ("1", "on", "true"),
        cooldown=top.get("cooldown", "").strip(),
    )
    for index in sorted(steps):
        raw_step = steps[index]
        mine = sorted((j, v) for (i, j), v in variants.items() if i == index)
        if len(mine) > MAX_VARIANTS_IN_FORM:
            raise FormError(f"a step has at most {MAX_VARIANTS_IN_FORM} variants in the editor")
        form.steps.append(
            StepForm(
                key=raw_step.get("key", "").strip(),
                channel=raw_step.get("channel", "").strip(),
                purpose=raw_step.get("purpose", "").strip(),
                template=raw_step.get("template", "").strip(),
                variants=[
                    VariantForm(
                        name=v.get("name", "").strip(),
                        template=v.get("template", "").strip(),
                        weight=v.get("weight", "").strip(),
                    )
                    for _j, v in mine
                ],
                anchor=raw_step.get("anchor", "").strip(),
                offset=raw_step.get("offset", "").strip(),
                at=raw_step.get("at", "").strip(),
                not_after=raw_step.get("not_after", "").strip(),
                when=raw_step.get("when", "").strip(),
                confirm_request=raw_step.get("confirm_request") in ("1", "on", "true"),
            )
        )
    return form


# -- to the YAML's dict --------------------------------------------------------------------


def _weight(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _step_data(step: StepForm) -> dict[str, object]:
    data: dict[str, object] = {}
    for name in ("key", "channel", "purpose", "template"):
        value = getattr(step, name)
        if value:
            data[name] = value
    kept = [v for v in step.variants if not v.blank()]
    if kept:
        data["variants"] = [
            {
                **({"name": v.name} if v.name else {}),
                **({"template": v.template} if v.template else {}),
                **({"weight": _weight(v.weight)} if v.weight else {}),
            }
            for v in kept
        ]
    if step.anchor and step.anchor != "enrolled_at":  # the default, as the files leave it out
        data["anchor"] = step.anchor
    for name in ("offset", "at", "not_after", "when"):
        value = getattr(step, name)
        if value:
            data[name] = value
    if step.confirm_request:
        data["confirm_request"] = True
    return data


def to_data(form: SequenceForm, key: str, version: int) -> dict[str, object]:
    """The dict a sequence file would hold, keys in the files' order; empty optional fields
    left out, so validation names what is missing rather than what is blank."""
    data: dict[str, object] = {"key": key}
    if form.name:
        data["name"] = form.name
    data["version"] = version
    if form.trigger:
        data["trigger"] = form.trigger
    if form.exit_on:
        data["exit_on"] = list(form.exit_on)
    if form.reenter:
        data["reenter"] = True
    if form.cooldown and form.cooldown not in ("0", "0s"):
        data["cooldown"] = form.cooldown
    data["steps"] = [_step_data(step) for step in form.steps]
    return data


# -- the step buttons ----------------------------------------------------------------------

_ACTION = re.compile(
    r"^(add|add-after|up|down|remove|add-variant|remove-variant)(?:-(\d+))?(?:-(\d+))?$"
)


def apply_action(form: SequenceForm, action: str) -> SequenceForm:
    """The form after one of its buttons: ``add`` (a blank step at the end), ``add-after-<i>``,
    ``up-<i>``, ``down-<i>``, ``remove-<i>``, ``add-variant-<i>``, ``remove-variant-<i>-<j>``.
    Nothing typed is lost but what the button removes. FormError for anything else."""
    found = _ACTION.match(action)
    if found is None:
        raise FormError(f"unknown editor action {action[:40]!r}")
    verb, first, second = found.group(1), found.group(2), found.group(3)
    steps = list(form.steps)
    if verb == "add" and first is None:
        if len(steps) >= MAX_STEPS:
            raise FormError(f"a sequence has at most {MAX_STEPS} steps in the editor")
        return replace(form, steps=[*steps, StepForm()])
    if first is None or (second is None) != (verb != "remove-variant"):
        raise FormError(f"unknown editor action {action[:40]!r}")
    index = int(first)
    if not 0 <= index < len(steps):
        raise FormError(f"there is no step {index + 1}")
    if verb == "add-after":
        if len(steps) >= MAX_STEPS:
            raise FormError(f"a sequence has at most {MAX_STEPS} steps in the editor")
        steps.insert(index + 1, StepForm())
    elif verb == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif verb == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    elif verb == "remove":
        del steps[index]
    elif verb == "add-variant":
        step = steps[index]
        if len(step.variants) >= MAX_VARIANTS_IN_FORM:
            raise FormError(f"a step has at most {MAX_VARIANTS_IN_FORM} variants in the editor")
        # Turning a one-template step into a test: its template becomes the first variant.
        variants = list(step.variants) or (
            [VariantForm(name="A", template=step.template, weight="1")] if step.template else []
        )
        template = "" if not step.variants and step.template else step.template
        steps[index] = replace(step, template=template, variants=[*variants, VariantForm()])
    elif verb == "remove-variant":
        assert second is not None
        step = steps[index]
        number = int(second)
        if not 0 <= number < len(step.variants):
            raise FormError(f"step {index + 1} has no variant {number + 1}")
        steps[index] = replace(
            step, variants=[v for j, v in enumerate(step.variants) if j != number]
        )
    return replace(form, steps=steps)


# -- problems next to their fields ---------------------------------------------------------

_STEP_PATH = re.compile(r"^steps\[(\d+)\](?:\.(\w+)(?:\[(\d+)\](?:\.(\w+))?)?)?$")
_TOP_PATH = re.compile(r"^(\w+)(?:\[\d+\])?$")
TOP_FIELDS = ("name", "trigger", "exit_on", "reenter", "cooldown", "steps")


@dataclass(frozen=True)
class PlacedProblem:
    """A problem with the field it belongs next to: ``field_id`` is the id of the form field
    (or fieldset) it names, "" when it names none the form shows (it goes in the summary)."""

    field_id: str
    message: str  # the reason without the field path
    text: str  # the whole reason, for the summary at the top
    line: int | None


def _field_id(path: str) -> str:
    step = _STEP_PATH.match(path)
    if step:
        index, name, number, sub = step.groups()
        if name is None:
            return f"steps-{index}"
        if name == "variants":
            if number is not None and sub in VARIANT_FIELDS:
                return f"steps-{index}-variants-{number}-{sub}"
            return f"steps-{index}-variants"
        return f"steps-{index}-{name}" if name in STEP_FIELDS else f"steps-{index}"
    top = _TOP_PATH.match(path)
    if top and top.group(1) in TOP_FIELDS:
        return top.group(1)
    return ""


def place(problems: Iterable[ConfigProblem], form: SequenceForm) -> list[PlacedProblem]:
    """Each problem with the field it names. The reason starts with the field path, the step
    named by key ("steps[2] (booking-nudge).offset: …"); the key is taken off first, knowing
    the form's keys, so a key holding brackets or a colon cannot confuse the placing."""
    placed = []
    for problem in problems:
        reason = problem.reason
        normal = reason
        for index, step in enumerate(form.steps):
            named = f"steps[{index}] ({step.key})"
            if step.key and reason.startswith(named):
                normal = f"steps[{index}]" + reason.removeprefix(named)
                break
        path, colon, message = normal.partition(": ")
        field_id = _field_id(path) if colon else ""
        placed.append(
            PlacedProblem(
                field_id=field_id,
                message=message if field_id else reason,
                text=reason,
                line=problem.line,
            )
        )
    return placed


def by_field(placed: Iterable[PlacedProblem]) -> dict[str, list[str]]:
    shown: dict[str, list[str]] = {}
    for problem in placed:
        if problem.field_id:
            shown.setdefault(problem.field_id, []).append(problem.message)
    return shown


def local_time_text(instant: object, zone: ZoneInfo) -> str:
    """An instant as a lead reads it in their zone: "Tue 10 Mar, 10:00 MDT"."""
    if not isinstance(instant, datetime):
        return ""
    local = instant.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} {local.tzname()}"


__all__ = [
    "FormError",
    "PlacedProblem",
    "SequenceForm",
    "StepForm",
    "VariantForm",
    "apply_action",
    "by_field",
    "from_data",
    "from_fields",
    "local_time_text",
    "place",
    "sequence_data",
    "to_data",
]
