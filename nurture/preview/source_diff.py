"""A line diff of two template sources, in the shape a page shows it: hunks of numbered lines,
each kept, removed or added. Marketing reads this before anything goes live, so it is lines
with their numbers, not unified-diff text with @@ headers."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

Kind = Literal["same", "removed", "added"]


@dataclass(frozen=True)
class DiffLine:
    kind: Kind
    old: int | None  # its number in the old source; None for an added line
    new: int | None  # its number in the new source; None for a removed line
    text: str


def hunks(old: str, new: str, *, context: int = 3) -> list[list[DiffLine]]:
    """The changed stretches, each with ``context`` unchanged lines around it; [] when equal."""
    before, after = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    found: list[list[DiffLine]] = []
    for group in matcher.get_grouped_opcodes(context):
        hunk: list[DiffLine] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                hunk += [
                    DiffLine("same", i + 1, j + 1, before[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            # A replaced stretch reads as the old lines going, then the new ones coming.
            hunk += [DiffLine("removed", i + 1, None, before[i]) for i in range(i1, i2)]
            hunk += [DiffLine("added", None, j + 1, after[j]) for j in range(j1, j2)]
        found.append(hunk)
    return found


__all__ = ["DiffLine", "hunks"]
