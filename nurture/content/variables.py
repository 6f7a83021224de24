"""What a template can print: the names the render context offers, read off a real context.

One home for the studio's variable picker and for lint's "did you mean" hints. Both look at a
``RenderContext`` built the way the worker builds one (``content.context_for``) instead of a
list copied by hand, so a field added to ``LeadView`` shows in the picker and stops being a
typo in lint the day it exists.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from jinja2 import nodes

from nurture.content.rendering import RenderContext

# A line for each group in the picker; a group without one still shows (its names say enough).
GROUP_NOTES = {
    "lead": "The person the message goes to.",
    "clinic": "The clinic, from config/clinic.yaml.",
    "consult": "Their consult, when one is booked.",
    "links": "Links made for this person.",
    "alert": "What a staff alert is about.",
}
OTHER = "other"  # the group for plain values at the top (marketing, audience)
# Jinja's own names, usable in any template without being in the context.
JINJA_NAMES = frozenset({"loop", "range", "dict", "lipsum", "cycler", "joiner", "namespace"})
# Tests that ask whether a name exists are how a template guards an optional one.
_EXISTENCE_TESTS = frozenset({"defined", "undefined"})


@dataclass(frozen=True)
class Variable:
    name: str  # as written in a template: "lead.first_name"
    example: str  # what it prints for the sample, or why it prints nothing


@dataclass(frozen=True)
class VariableGroup:
    name: str  # "lead"
    note: str
    variables: tuple[Variable, ...]


def _example(value: object) -> str:
    if value is None or value == "":
        return "(empty for this sample)"
    if isinstance(value, Mapping):
        if not value:
            return "(a mapping, empty for this sample)"
        return "a mapping of " + ", ".join(sorted(str(k) for k in value))
    return str(value)


def _members(value: object) -> dict[str, Any] | None:
    """The names reachable with a dot on a context value; None when it has no fixed set."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return None


def groups(context: RenderContext) -> list[VariableGroup]:
    """The picker's list: each structured value of the context with its members and an
    example, then the plain values together."""
    found: list[VariableGroup] = []
    plain: list[Variable] = []
    for top, value in context.variables().items():
        members = _members(value)
        if members is None:
            plain.append(Variable(top, _example(value)))
            continue
        if not members:
            continue  # alert outside staff alerts: nothing to offer
        found.append(
            VariableGroup(
                top,
                GROUP_NOTES.get(top, ""),
                tuple(Variable(f"{top}.{name}", _example(v)) for name, v in members.items()),
            )
        )
    if plain:
        found.append(VariableGroup(OTHER, "Plain values about this message.", tuple(plain)))
    return found


@dataclass(frozen=True)
class KnownNames:
    """What a template may name: the context's top-level names, and for each view (lead,
    clinic, consult, links) the fields after its dot. A mapping is not checked: ``alert``
    carries different keys for each kind of alert, which a template tells apart with
    ``is defined``, so no one sample has them all."""

    top: frozenset[str]
    members: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, context: RenderContext) -> KnownNames:
        variables = context.variables()
        members = {
            top: frozenset(f.name for f in fields(value))
            for top, value in variables.items()
            if is_dataclass(value) and not isinstance(value, type)
        }
        return cls(frozenset(variables), members)


@dataclass(frozen=True)
class UnknownName:
    line: int
    name: str  # as written: "lead.frist_name" or "clinc"
    message: str


def _suggestion(wrong: str, choices: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(wrong, sorted(choices), n=1)
    return f"did you mean {prefix}{close[0]}? " if close else ""


def _dotted(node: nodes.Node) -> str | None:
    """``alert.came_by`` for the expression that names it; None for anything else."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _dotted(node.node)
        return None if inner is None else f"{inner}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _dotted(node.node)
        return None if inner is None else f"{inner}.{node.arg.value}"
    return None


_NAMING = (nodes.Name, nodes.Getattr, nodes.Getitem)


def _guarded(tree: nodes.Template) -> set[int]:
    """The nodes a template guards with ``is defined``: the test itself, and the same name
    inside the ``{% if %}`` (or ``a if b else c``) that asks, as in
    ``{% if alert.came_by is defined %}…{{ alert.came_by }}{% endif %}``."""
    guarded: set[int] = set()
    for test in tree.find_all(nodes.Test):
        if test.name in _EXISTENCE_TESTS:
            guarded.update(id(n) for n in [test.node, *test.node.find_all(_NAMING)])
    branches: list[tuple[nodes.Node, list[nodes.Node]]] = [
        (branch.test, list(branch.body)) for branch in tree.find_all(nodes.If)
    ]
    branches += [(branch.test, [branch.expr1]) for branch in tree.find_all(nodes.CondExpr)]
    for condition, inside in branches:
        asked = {
            _dotted(t.node)
            for t in [condition, *condition.find_all(nodes.Test)]
            if isinstance(t, nodes.Test) and t.name in _EXISTENCE_TESTS
        }
        asked.discard(None)
        for part in inside:
            for node in [part, *part.find_all(_NAMING)]:
                if asked and _dotted(node) in asked:
                    guarded.add(id(node))
    return guarded


def unknown_names(
    tree: nodes.Template, known: KnownNames, *, undeclared: set[str], offset: int = 0
) -> list[UnknownName]:
    """Every ``{{ clinc.name }}`` and ``{{ lead.frist_name }}`` in a parsed template, with the
    line, the name and what exists instead. ``undeclared`` is what Jinja says the template
    takes from outside (``meta.find_undeclared_variables``): a name it sets itself is its own."""
    guarded = _guarded(tree)
    found: list[UnknownName] = []
    allowed_top = known.top | JINJA_NAMES
    for node in tree.find_all(nodes.Name):
        if node.ctx != "load" or node.name in allowed_top or node.name not in undeclared:
            continue
        if id(node) in guarded:
            continue
        found.append(
            UnknownName(
                node.lineno + offset,
                node.name,
                f"unknown variable {node.name!r}: {_suggestion(node.name, known.top)}"
                f"templates can use {', '.join(sorted(known.top))}",
            )
        )
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if id(access) in guarded:
            continue
        if isinstance(access, nodes.Getattr):
            top, member = access.node, access.attr
        elif isinstance(access, nodes.Getitem) and isinstance(access.arg, nodes.Const):
            top, member = access.node, str(access.arg.value)
        else:
            continue  # lead[some_expression]: only a render can tell
        if not isinstance(top, nodes.Name) or top.name not in undeclared:
            continue
        names = known.members.get(top.name)
        if names is None or member in names:
            continue
        written = f"{top.name}.{member}"
        available = f"{top.name} has {', '.join(f'{top.name}.{n}' for n in sorted(names))}"
        found.append(
            UnknownName(
                access.lineno + offset,
                written,
                f"unknown name {written}: {_suggestion(member, names, f'{top.name}.')}{available}",
            )
        )
    return sorted(found, key=lambda u: (u.line, u.name))


__all__ = ["KnownNames", "UnknownName", "Variable", "VariableGroup", "groups", "unknown_names"]
