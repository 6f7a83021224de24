"""Parse a JSON request body from the public without letting it hurt the process.

json.loads trusts its input more than a public endpoint can: a body nested 100,000 deep
exhausts the recursive parser (RecursionError), a 5,000-digit integer trips Python's
int-to-str limit (ValueError) and "1e999" or "NaN" turn into floats no field can use.
parse_json refuses each of these with a readable JsonBodyError, which callers answer
with a 4xx naming the body.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 20  # a 64-bit id has 19 or 20; nothing we accept needs more
MAX_FLOAT_CHARS = 40  # a double round-trips in 17 significant digits

# A complete string literal, a bracket, or a lone quote that opens a string never closed.
# Strings are skipped whole so brackets inside them do not count as nesting.
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]|"', re.DOTALL)
_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")


class JsonBodyError(ValueError):
    """The body is not JSON we accept; the message says why, in words for the sender."""


def nesting_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays and objects in `text` nest deeper than `max_depth`.

    A linear scan that stops at the first level too deep, so a body of a million "["
    costs no more than reading it once.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case, answered at C speed
    depth = 0
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece in _OPENERS:
            depth += 1
            if depth > max_depth:
                return True
        elif piece in _CLOSERS:
            depth -= 1
        elif piece == '"':
            return False  # a string never closed: the rest is inside it; json.loads says so
    return False


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonBodyError(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise JsonBodyError(f"a number is longer than {MAX_FLOAT_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError(f"the number {text} is too large")
    return value


def _parse_constant(text: str) -> Any:
    raise JsonBodyError(f"{text} is not a JSON number")


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in `raw`, or JsonBodyError saying what is wrong with it."""
    if not raw.strip():
        raise JsonBodyError("not valid JSON: the body is empty")
    try:
        text = raw.decode("utf-8-sig")  # RFC 8259 lets a parser ignore a byte-order mark
    except UnicodeDecodeError as error:
        raise JsonBodyError(f"not valid JSON: not UTF-8 text (byte {error.start})") from None
    if nesting_depth_exceeds(text, max_depth):
        raise JsonBodyError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as error:
        raise JsonBodyError(f"not valid JSON: {error}") from None
    except RecursionError:  # the depth scan should make this unreachable; belt and braces
        raise JsonBodyError(f"nested deeper than {max_depth} levels") from None
