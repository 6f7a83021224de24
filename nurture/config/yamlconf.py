"""YAML configuration files validated by pydantic, with errors that name file, line and field.

Marketing and ops edit these files by hand; an error must point at the exact place, never at a
Python stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ConfigProblem:
    path: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.reason}"


class ConfigError(Exception):
    """One or more problems in configuration files; ``str()`` lists each on its own line."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    lines: dict[Location, int]

    def line_of(self, location: Location) -> int | None:
        """The line of the deepest part of ``location`` that exists in the file."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(location[:end])
            if line is not None:
                return line
        return None

    def problem(self, location: Location, reason: str) -> ConfigProblem:
        field = format_location(location)
        return ConfigProblem(
            self.path, self.line_of(location), f"{field}: {reason}" if field else reason
        )


def format_location(location: Iterable[str | int]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# libyaml's loader when PyYAML was built with it: config files are read at every start and in
# most tests, and the pure-Python parser was a fifth of the fast test loop.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> YamlDocument:
    """Parse ``path``, remembering the line of every key and list item; refuse duplicate keys."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem(path, None, f"cannot read the file: {error}")]) from None
    return parse_yaml(source, path)


def parse_yaml(source: str, path: Path) -> YamlDocument:
    """Parse YAML text that is not in a file (a sequence version kept in the database);
    ``path`` names it in every problem."""
    try:
        node = yaml.compose(source, Loader=_LOADER)
        data = yaml.load(source, Loader=_LOADER)  # noqa: S506 - a SafeLoader, C or Python
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        reason = f"not valid YAML: {error.problem or error.context}"
        raise ConfigError([ConfigProblem(path, line, reason)]) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem(path, None, f"not valid YAML: {error}")]) from None
    lines: dict[Location, int] = {(): 1}
    problems: list[ConfigProblem] = []
    if node is not None:
        _collect_lines(path, node, (), lines, problems)
    if problems:
        raise ConfigError(problems)
    return YamlDocument(path, data, lines)


def _collect_lines(
    path: Path,
    node: yaml.Node,
    location: Location,
    lines: dict[Location, int],
    problems: list[ConfigProblem],
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = format_location((*location, key))
                problems.append(ConfigProblem(path, line, f"{where}: duplicate key"))
            seen.add(key)
            lines[(*location, key)] = line
            _collect_lines(path, value_node, (*location, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*location, index)] = item.start_mark.line + 1
            _collect_lines(path, item, (*location, index), lines, problems)


def validate(document: YamlDocument, model: type[ModelT]) -> ModelT:
    """Validate a parsed file against ``model``; every error names its line and field."""
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        problems = [
            document.problem(tuple(item["loc"]), _clean_message(item["msg"]))
            for item in error.errors(include_url=False)
        ]
        raise ConfigError(problems) from None


def _clean_message(message: str) -> str:
    # pydantic prefixes custom errors with "Value error, "; the reader needs only the reason.
    return message.removeprefix("Value error, ")


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    return validate(read_yaml(path), model)
