"""Reading one e-mail from the reply mailbox. Pure: its bytes in, plain facts out.

Who sent it (one plain address or none), which of our e-mails it answers (the Message-IDs it
names), what the person wrote above the quoted text, and whether a machine wrote it: an
automatic reply (`auto_replies`) or a delivery status notification (RFC 3464, read by
flufl.bounce, the GNU Mailman detectors). Everything here is hostile input: it is only ever
stored and compared, never put into a header, a link or markup.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html.parser import HTMLParser

from flufl.bounce import all_failures

from nurture.replies import auto_replies

# What is kept of what someone wrote: enough for staff to read, never a memory problem.
MAX_TEXT = 10_000
MAX_REFERENCES = 20
MAX_ADDRESS = 254  # RFC 5321's path limit, less the angle brackets
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
# A plain ASCII addr-spec, nothing a header could be built from (no spaces, quotes, CR/LF).
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Where the quoted original begins in the common clients (Gmail, Apple Mail, Outlook).
_QUOTE_STARTS = (
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^\s*From:\s.+", re.IGNORECASE),
    re.compile(r"^\s*Sent from my \w+", re.IGNORECASE),
)
_SIGNATURE = "-- "
# "Re: …" repeats our own subject: its words are ours, not the person's.
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|vs|antw|fwd?)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Bounce:
    permanent: frozenset[str]
    temporary: frozenset[str]
    # Message-IDs of the returned original (its headers travel inside the report).
    about: tuple[str, ...]


@dataclass(frozen=True)
class IncomingMail:
    fingerprint: str  # sha256 of the Message-ID, or of the bytes when there is none
    message_id: str | None
    from_address: str | None  # lower-case, or None when there is not exactly one plain one
    references: tuple[str, ...]  # In-Reply-To first, then References newest first
    subject: str
    text: str  # what the person wrote: quoted text, signature and markup removed
    auto_reply: str | None  # why it reads as written by a machine, for the record
    bounce: Bounce | None

    @property
    def words(self) -> str:
        """What is read for crisis words and opt-outs: the text, and a subject of their own."""
        if self.subject and not _REPLY_SUBJECT.match(self.subject):
            return f"{self.subject}\n{self.text}"
        return self.text


def read(raw: bytes) -> IncomingMail:
    """Read one message; never raises on malformed mail (what cannot be read is left out)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    legacy = email.message_from_bytes(raw)  # the compat32 API: headers undecoded
    message_id = first_message_id(_header(parsed, "Message-ID"))
    fingerprint = hashlib.sha256(
        message_id.encode() if message_id else raw, usedforsecurity=False
    ).hexdigest()
    bounce = _bounce(legacy, parsed)
    return IncomingMail(
        fingerprint=fingerprint,
        message_id=message_id,
        from_address=sender_address(legacy),
        references=_references(parsed),
        subject=_one_line(_header(parsed, "Subject"))[:300],
        text="" if bounce else reply_text(parsed),
        auto_reply=None if bounce else auto_replies.reason(parsed),
        bounce=bounce,
    )


def _header(message: Message, name: str) -> str:
    """A header as text; a header the parser cannot decode reads as empty."""
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # malformed encoded-words, bad charsets
        return ""
    return str(value) if value is not None else ""


def _one_line(value: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def first_message_id(value: str) -> str | None:
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else None


def sender_address(legacy: Message) -> str | None:
    """The one plain address of the From header; None for none, several, or anything odd.

    Read from the header as it came (compat32 leaves encoded-words encoded): a display name that
    decodes to CR/LF and a second header line is never decoded, only skipped."""
    try:
        value = str(legacy.get("From") or "")
    except (ValueError, TypeError, IndexError):
        return None
    addresses = [address for _name, address in getaddresses([value]) if address]
    if len(addresses) != 1 or len(addresses[0]) > MAX_ADDRESS:
        return None
    return addresses[0].lower() if _ADDRESS.fullmatch(addresses[0]) else None


def _references(message: Message) -> tuple[str, ...]:
    named = _MESSAGE_ID.findall(_header(message, "In-Reply-To"))
    named += reversed(_MESSAGE_ID.findall(_header(message, "References")))
    return tuple(dict.fromkeys(named))[:MAX_REFERENCES]


def reply_text(message: EmailMessage) -> str:
    """What the person wrote: the plain-text body (else the HTML one as text), cut where the
    quoted original or the signature begins, lines quoted with ">" dropped."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        content = part.get_content() if part is not None else ""
    except (LookupError, ValueError, TypeError, AssertionError):  # unknown charset, bad CTE
        content = ""
    if not isinstance(content, str):
        return ""
    if part is not None and part.get_content_subtype() == "html":
        content = _html_text(content)
    kept: list[str] = []
    for line in content.replace("\r\n", "\n").split("\n"):
        if line == _SIGNATURE or any(start.match(line) for start in _QUOTE_STARTS):
            break
        if not line.lstrip().startswith(">"):
            kept.append("".join(c for c in line if c.isprintable() or c == "\t"))
    return "\n".join(kept).strip()[:MAX_TEXT]


class _TextOfHtml(HTMLParser):
    """The text of an HTML body, without what it quotes (blockquote, Gmail's quote block)."""

    SKIPPED = frozenset({"blockquote", "script", "style", "head"})
    BREAKS = frozenset({"br", "p", "div", "li", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        quoted = any(name == "class" and value and "quote" in value for name, value in attrs)
        if self.skipping or tag in self.SKIPPED or quoted:
            self.skipping += tag not in {"br", "img", "hr", "meta", "link", "input"}
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            self.skipping -= 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html_text(html: str) -> str:
    reader = _TextOfHtml()
    reader.feed(html)
    reader.close()
    return "".join(reader.parts)


def _bounce(legacy: Message, parsed: EmailMessage) -> Bounce | None:
    """A delivery status notification: RFC 3464's multipart/report, read by flufl.bounce (its
    DSN detector runs first; the other detectors only see mail from a mailer daemon)."""
    is_report = (
        parsed.get_content_type() == "multipart/report"
        and str(parsed.get_param("report-type", "")).lower() == "delivery-status"
    )
    daemon = (sender_address(legacy) or "").split("@")[0]
    if not is_report and daemon not in {"mailer-daemon", "postmaster"}:
        return None
    try:  # flufl.bounce reads the compat32 API
        temporary, permanent = all_failures(legacy)
    except Exception:  # a detector choking on hostile mail: read as finding no address
        temporary, permanent = frozenset(), frozenset()
    about = [
        *_returned_message_ids(parsed),
        *_references(parsed),
    ]
    return Bounce(
        permanent=_addresses(permanent),
        temporary=_addresses(temporary) - _addresses(permanent),
        about=tuple(dict.fromkeys(about))[:MAX_REFERENCES],
    )


def _addresses(found: frozenset[bytes]) -> frozenset[str]:
    decoded = (value.decode("ascii", "replace").strip().lower() for value in found)
    return frozenset(v for v in decoded if len(v) <= MAX_ADDRESS and _ADDRESS.fullmatch(v))


def _returned_message_ids(parsed: EmailMessage) -> list[str]:
    """The Message-ID of the original inside a report (message/rfc822 or its headers only)."""
    found: list[str] = []
    for part in parsed.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            for inner in part.iter_parts() if isinstance(part, EmailMessage) else ():
                found += _MESSAGE_ID.findall(_header(inner, "Message-ID"))[:1]
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = email.message_from_bytes(payload, policy=email.policy.default)
                found += _MESSAGE_ID.findall(_header(headers, "Message-ID"))[:1]
    return found
