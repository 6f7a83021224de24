"""Header values built by us, byte for byte, so that no text a lead typed can become a header line.

Python's e-mail package cannot be trusted with lead text in a header: when it folds a value it
*decodes* RFC 2047 encoded-words it finds there, so a first name such as
``=?utf-8?q?Ann=0D=0ABcc:_x@example.org?=`` comes out as a real ``Bcc:`` line (the bug behind
CVE-2024-6923, fixed in CPython 3.11.10; our machines run 3.11.7). So we never let it fold or
parse what we set: every value is made here into lines that are either plain printable ASCII
words or our own base64 encoded-words, joined by CRLF + space, and stored raw.

The rules (RFC 5322 §2.2.3 folding, RFC 2047 §2 and §5 encoded-words):
- control characters, line and paragraph separators become a single space first;
- a value that is printable ASCII, holds no ``=?`` and no word over 75 characters is folded at its
  spaces into lines of at most 78 characters;
- anything else is base64 encoded-words of at most 75 characters each, never splitting a UTF-8
  character, so a decoder sees exactly the text we meant and nothing else.
"""

from __future__ import annotations

import base64
import re
import unicodedata

LINE = 78  # RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters
ENCODED_WORD = 75  # RFC 2047 §2: an encoded-word is at most 75 characters
FOLD = "\r\n "
_PREFIX, _SUFFIX = "=?utf-8?b?", "?="
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")  # RFC 5322 atext and spaces
_SAFE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class HeaderValueError(ValueError):
    """A value that cannot be put in a header as it is (an address with odd characters)."""


def one_line(value: str) -> str:
    """The text with every control or separator character turned into one space, trimmed."""
    cleaned = "".join(
        " " if unicodedata.category(char) in {"Cc", "Zl", "Zp"} else char for char in value
    )
    return " ".join(cleaned.split())


def _needs_encoding(text: str) -> bool:
    if not _PRINTABLE_ASCII.fullmatch(text) or "=?" in text:
        return True
    return any(len(word) > ENCODED_WORD for word in text.split(" "))


def _fold_words(words: list[str], first_line_room: int) -> str:
    lines: list[str] = []
    current = ""
    room = first_line_room
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) > room:
            lines.append(current)
            current, room = word, LINE - 1  # a continuation line starts with one space
        else:
            current = candidate
    lines.append(current)
    return FOLD.join(lines)


def _word_bytes(room: int) -> int:
    """How many UTF-8 bytes fit an encoded-word of at most ``room`` characters."""
    return (min(room, ENCODED_WORD) - len(_PREFIX) - len(_SUFFIX)) // 4 * 3


def _encoded_words(text: str, first_room: int = ENCODED_WORD) -> list[str]:
    """Base64 encoded-words for ``text``; the first fits ``first_room``, the rest a whole line."""
    chunks: list[bytes] = []
    chunk = b""
    budget = _word_bytes(first_room)
    for char in text:
        encoded = char.encode()
        if len(chunk) + len(encoded) > budget:
            chunks.append(chunk)
            chunk, budget = b"", _word_bytes(ENCODED_WORD)
        chunk += encoded
    if chunk:
        chunks.append(chunk)
    return [f"{_PREFIX}{base64.b64encode(raw).decode('ascii')}{_SUFFIX}" for raw in chunks]


def unstructured(name: str, value: str) -> str:
    """A folded, safe value for an unstructured header such as Subject."""
    text = one_line(value)
    first_line_room = LINE - len(name) - 2  # "Name: "
    if not _needs_encoding(text):
        return _fold_words(text.split(" "), first_line_room) if text else ""
    return _fold_words(_encoded_words(text, first_line_room), first_line_room)


def address(value: str) -> str:
    """A bare ``local@domain`` address, refused unless it is plain ASCII without surprises."""
    if not _SAFE_ADDRESS.fullmatch(value):
        raise HeaderValueError(f"not a plain ASCII e-mail address: {value!r}")
    return value


def _split_mailbox(value: str) -> tuple[str, str]:
    display, bracket, rest = value.rpartition("<")
    if not bracket:
        return "", value.strip()
    return display, rest.rstrip().removesuffix(">").strip()


def address_of(value: str) -> str:
    """The bare address of ``Display Name <local@domain>`` (checked, as :func:`address`)."""
    return address(_split_mailbox(value)[1])


def mailbox(name: str, value: str) -> str:
    """``Display Name <local@domain>`` (or a bare address) with the display name made safe."""
    display, bare = _split_mailbox(value)
    bare = address(bare)
    display = one_line(display).strip()
    if not display:
        return bare
    if _ATOMS.fullmatch(display) and "=?" not in display:
        phrase = display
    elif _PRINTABLE_ASCII.fullmatch(display) and "=?" not in display:
        phrase = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = " ".join(_encoded_words(display))
    return _fold_words([*phrase.split(" "), f"<{bare}>"], LINE - len(name) - 2)


def raw_line(name: str, value: str) -> str:
    """A value we built ourselves (a URL, a token): one line of ASCII or an error."""
    if not _PRINTABLE_ASCII.fullmatch(value) or len(name) + len(value) > 990:
        raise HeaderValueError(f"header {name} must be one line of ASCII under 990 characters")
    return value
