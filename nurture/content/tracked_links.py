"""First-party click tracking (issue 15 §2): the links of a message go through
``{public_url}/r/{token}``, and the token says which message and which of its links.

The token is the link's index (1 byte), the message id (6 bytes, big-endian) and the first
8 bytes (64 bits) of an HMAC-SHA256 of both under the app secret, base64url without padding:
always :data:`TOKEN_LENGTH` characters. A fixed length keeps the studio's segment count exact
(the preview renders a token of the same length as the one sent) and costs a text little.

The token holds no URL: the original links are stored with the message where it is written out
(``message.context["links"]``) and the redirect reads them from there, so it can only go where
nurture itself pointed that message: never an open redirect.

Not rewritten: the unsubscribe and preferences links and anything else already under the
public URL's ``/u/`` (an opt-out must work without a hop, and RFC 8058's one-click header is
built separately and never touched), links already tracked, and ``mailto:``/``tel:`` links
(only http(s) links are rewritten at all).

Mail scanners that fetch every link of a message before the person reads it, and phones that
fetch a text's link for its preview, are not counted as clicks: a HEAD, or a follow within
seconds of the send (``nurture.funnel.clicks.MACHINE_WINDOW``), is redirected and not recorded.
A scanner that waits longer, or one that clicks at the moment the person opens the message, is
still counted; the funnel counts distinct leads, which blunts that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nurture.db.models import Purpose

_INDEX_BYTES = 1
_ID_BYTES = 6
_TAG_BYTES = 8  # 64 bits: forging one takes ~2^63 guesses at the redirect
_RAW_BYTES = _INDEX_BYTES + _ID_BYTES + _TAG_BYTES
TOKEN_LENGTH = 20  # base64 of 15 bytes, no padding needed
MAX_LINKS = 256  # the index is one byte; links past this stay as they are
MAX_MESSAGE_ID = 2 ** (8 * _ID_BYTES) - 1
# A message id of the same width as any real one: what previews put in the token.
PREVIEW_MESSAGE_ID = 0
CONTEXT_KEY = "links"  # where, in message.context, the original links are stored
# The sequence steps whose links are tracked. An opt-in confirmation is a legal text that goes
# out word for word as published; replies and staff alerts are no sequence step at all (a crisis
# reply's links must work even when nurture does not).
TRACKED_PURPOSES = frozenset({Purpose.CARE, Purpose.MARKETING})

_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
_TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_HREF = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)([\"'])(.*?)\2", re.IGNORECASE | re.DOTALL)
_TRAILING = ".,;:!?'\""


@dataclass(frozen=True)
class LinkRef:
    message_id: int
    index: int


def _tag(secret: bytes, payload: bytes) -> bytes:
    # Its own prefix: a tag for a click can never pass as an unsubscribe tag, or the reverse.
    digest = hmac.new(secret, b"nurture-click-v1:" + payload, hashlib.sha256).digest()
    return digest[:_TAG_BYTES]


def sign(secret: bytes, message_id: int, index: int) -> str:
    if not 0 <= index < MAX_LINKS:
        raise ValueError(f"link index {index} is outside 0..{MAX_LINKS - 1}")
    if not 0 <= message_id <= MAX_MESSAGE_ID:
        raise ValueError(f"message id {message_id} does not fit in {_ID_BYTES} bytes")
    payload = index.to_bytes(_INDEX_BYTES, "big") + message_id.to_bytes(_ID_BYTES, "big")
    return base64.urlsafe_b64encode(payload + _tag(secret, payload)).decode()


def verify(secret: bytes, token: str) -> LinkRef | None:
    """Which link of which message a genuine token names; None for anything forged, altered or
    malformed."""
    if not _TOKEN.fullmatch(token):
        return None  # one spelling per token: no "+" for "-", no padding, no stray characters
    raw = base64.urlsafe_b64decode(token)
    payload, tag = raw[: _INDEX_BYTES + _ID_BYTES], raw[_INDEX_BYTES + _ID_BYTES :]
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    return LinkRef(
        message_id=int.from_bytes(payload[_INDEX_BYTES:], "big"),
        index=payload[0],
    )


def tracked_url(public_url: str, token: str) -> str:
    return f"{public_url}/r/{token}"


@dataclass
class LinkTable:
    """The links of one message, each with its index in the token.

    Seeded with the links a message already had (a retried send renders again): an index once
    handed out keeps naming the same URL, so a click on an earlier attempt's link still lands.
    """

    public_url: str
    secret: bytes
    message_id: int
    keep: frozenset[str] = frozenset()  # URLs never rewritten (unsubscribe, preferences)
    links: list[str] = field(default_factory=list)

    def _leave_alone(self, url: str) -> bool:
        lowered = url.lower()
        return (
            url in self.keep
            or not lowered.startswith(("http://", "https://"))
            or url.startswith((f"{self.public_url}/u/", f"{self.public_url}/r/"))
        )

    def rewrite(self, url: str) -> str:
        if self._leave_alone(url):
            return url
        if url in self.links:
            index = self.links.index(url)
        elif len(self.links) < MAX_LINKS:
            self.links.append(url)
            index = len(self.links) - 1
        else:
            return url
        return tracked_url(self.public_url, sign(self.secret, self.message_id, index))

    def rewrite_text(self, text: str) -> str:
        """Every http(s) URL in plain text (an SMS body, an e-mail's text part)."""
        return _TEXT_URL.sub(lambda found: self._rewrite_found(found.group(0)), text)

    def _rewrite_found(self, found: str) -> str:
        url, tail = _split_trailing(found)
        return self.rewrite(url) + tail

    def rewrite_html(self, markup: str) -> str:
        """Every ``<a href>`` of an e-mail's HTML part; the attribute value is unescaped to the
        URL it stands for, and the tracked URL needs no escaping (base64url and the public URL)."""

        def one(found: re.Match[str]) -> str:
            original = html.unescape(found.group(3))
            replaced = self.rewrite(original)
            if replaced == original:
                return found.group(0)
            return f"{found.group(1)}{found.group(2)}{html.escape(replaced)}{found.group(2)}"

        return _HREF.sub(one, markup)


def representative(text: str, *, public_url: str, keep: Iterable[str]) -> str:
    """A text as the send path will write it, for a preview or a length check: each link
    through ``/r/`` with a token of the real length (whose key does not matter: it is never
    followed)."""
    table = LinkTable(public_url, b"preview", PREVIEW_MESSAGE_ID, keep=keep_set(keep))
    return table.rewrite_text(text)


def _split_trailing(found: str) -> tuple[str, str]:
    """A URL found in prose without the sentence's punctuation after it; a closing bracket is
    punctuation only when the URL opened none (``(https://x.example/a_(b))`` keeps its own)."""
    url = found
    while url:
        last = url[-1]
        if last in _TRAILING or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url, found[len(url) :]


def untracked(text: str, *, public_url: str, message_id: int, links: Sequence[str]) -> str:
    """A stored body with its tracked links put back to where they lead: for staff reading what
    was sent, so that opening one from the lead page is not counted as the lead's click. A token
    of another message, or an index with no stored link, is left as it is."""
    pattern = re.compile(re.escape(f"{public_url}/r/") + rf"([A-Za-z0-9_-]{{{TOKEN_LENGTH}}})")

    def back(found: re.Match[str]) -> str:
        raw = base64.urlsafe_b64decode(found.group(1))
        index, named = raw[0], int.from_bytes(raw[_INDEX_BYTES : _INDEX_BYTES + _ID_BYTES], "big")
        original = target(links, index) if named == message_id else None
        return original if original is not None else found.group(0)

    return pattern.sub(back, text)


def stored_links(context: dict[str, object]) -> list[str]:
    """The original links stored with a message (none for one written before tracking)."""
    links = context.get(CONTEXT_KEY)
    if not isinstance(links, list):
        return []
    return [link for link in links if isinstance(link, str)]


def target(links: Sequence[str], index: int) -> str | None:
    return links[index] if 0 <= index < len(links) else None


def keep_set(urls: Iterable[str]) -> frozenset[str]:
    return frozenset(url for url in urls if url)
