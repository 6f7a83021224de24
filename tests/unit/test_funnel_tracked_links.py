"""Tracked links (issue 15 §2): a short signed token per (message, link); rewriting e-mail and
text bodies leaves opt-out links, mailto: and tel: alone."""

from __future__ import annotations

import base64

import pytest

from nurture.content import tracked_links
from nurture.content.tracked_links import LinkRef, LinkTable, sign, verify

SECRET = b"s" * 32
PUBLIC = "https://nurture.test"
UNSUBSCRIBE = f"{PUBLIC}/u/abc"


def test_token_round_trip_is_short_and_fixed_length() -> None:
    for message_id, index in [
        (0, 0),
        (1, 3),
        (123_456_789, 255),
        (tracked_links.MAX_MESSAGE_ID, 1),
    ]:
        token = sign(SECRET, message_id, index)
        assert len(token) == tracked_links.TOKEN_LENGTH == 20
        assert verify(SECRET, token) == LinkRef(message_id, index)


def test_every_altered_token_is_refused() -> None:
    token = sign(SECRET, 42, 1)
    raw = bytearray(base64.urlsafe_b64decode(token))
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        assert verify(SECRET, base64.urlsafe_b64encode(bytes(altered)).decode()) is None
    assert verify(b"another secret", token) is None
    # The same bytes spelt in the standard alphabet ("+" for "-") are not the token.
    dashed = next(t for n in range(1000) if "-" in (t := sign(SECRET, n, 0)))
    assert verify(SECRET, dashed) is not None
    assert verify(SECRET, dashed.replace("-", "+")) is None
    for junk in ["", token[:-1], token + "A", "!" * 20, "é" * 20, token[:-1] + "="]:
        assert verify(SECRET, junk) is None


def test_an_unsubscribe_token_never_passes_as_a_click() -> None:
    import uuid

    from nurture.consent import tokens
    from nurture.db.models import Purpose

    assert verify(SECRET, tokens.sign(SECRET, uuid.uuid4(), Purpose.MARKETING)) is None


def test_sign_refuses_what_the_token_cannot_hold() -> None:
    with pytest.raises(ValueError, match="link index 256"):
        sign(SECRET, 1, 256)
    with pytest.raises(ValueError, match="does not fit"):
        sign(SECRET, tracked_links.MAX_MESSAGE_ID + 1, 0)


def _table(message_id: int = 7) -> LinkTable:
    return LinkTable(PUBLIC, SECRET, message_id, keep=frozenset({UNSUBSCRIBE}))


def _ref(url: str) -> LinkRef | None:
    assert url.startswith(f"{PUBLIC}/r/"), url
    return verify(SECRET, url.removeprefix(f"{PUBLIC}/r/"))


def test_text_links_are_rewritten_punctuation_and_opt_outs_left_alone() -> None:
    table = _table()
    text = (
        "Book at https://clinic.example/book?a=1&b=2. Or see (https://clinic.example/faq) "
        f"or https://en.example/Wiki_(x), call tel:+12085550100, mailto:care@clinic.example. "
        f"Unsubscribe: {UNSUBSCRIBE} and {PUBLIC}/u/other again https://clinic.example/book?a=1&b=2"
    )
    out = table.rewrite_text(text)
    assert table.links == [
        "https://clinic.example/book?a=1&b=2",
        "https://clinic.example/faq",
        "https://en.example/Wiki_(x)",
    ]
    words = out.split()
    assert _ref(words[2].rstrip(".")) == LinkRef(7, 0)
    assert _ref(words[5].strip("()")) == LinkRef(7, 1)
    assert _ref(words[7].rstrip(",")) == LinkRef(7, 2)
    assert "tel:+12085550100" in out and "mailto:care@clinic.example" in out
    assert f"Unsubscribe: {UNSUBSCRIBE} and {PUBLIC}/u/other again" in out
    assert _ref(words[-1]) == LinkRef(7, 0)  # the same URL twice: one index
    assert "clinic.example" not in out.replace("care@clinic.example", "")


def test_html_hrefs_are_rewritten_unescaped_and_shared_with_the_text() -> None:
    table = _table()
    html = (
        '<p><a href="https://clinic.example/book?a=1&amp;b=2">Book</a> '
        "<A HREF='https://clinic.example/faq'>FAQ</A> "
        '<a href="mailto:care@clinic.example">mail</a> <a href="tel:+1208">call</a> '
        f'<a href="{UNSUBSCRIBE}" style="color:#2f6f73;">Unsubscribe</a></p>'
    )
    out = table.rewrite_html(html)
    assert table.links == ["https://clinic.example/book?a=1&b=2", "https://clinic.example/faq"]
    assert f'href="{UNSUBSCRIBE}"' in out
    assert 'href="mailto:care@clinic.example"' in out and 'href="tel:+1208"' in out
    assert out.count(f"{PUBLIC}/r/") == 2
    # The text part of the same message reuses the index the HTML gave the link.
    assert _ref(table.rewrite_text("https://clinic.example/faq")) == LinkRef(7, 1)


def test_a_retry_keeps_the_indexes_an_earlier_attempt_handed_out() -> None:
    first = _table()
    first.rewrite_text("https://a.example/ https://b.example/")
    again = LinkTable(PUBLIC, SECRET, 7, links=list(first.links))
    out = again.rewrite_text("https://b.example/ https://c.example/")
    assert again.links == ["https://a.example/", "https://b.example/", "https://c.example/"]
    assert [_ref(word) for word in out.split()] == [LinkRef(7, 1), LinkRef(7, 2)]


def test_stored_links_and_target_read_only_what_was_stored() -> None:
    assert tracked_links.stored_links({"links": ["https://a.example/", 3]}) == [
        "https://a.example/"
    ]
    assert tracked_links.stored_links({"links": "https://evil.example/"}) == []
    assert tracked_links.stored_links({}) == []
    assert tracked_links.target(["https://a.example/"], 0) == "https://a.example/"
    assert tracked_links.target(["https://a.example/"], 1) is None


def test_untracked_puts_back_only_this_messages_links() -> None:
    secret, public = b"k" * 32, "https://nurture.test"
    mine = tracked_links.tracked_url(public, tracked_links.sign(secret, 7, 1))
    other = tracked_links.tracked_url(public, tracked_links.sign(secret, 8, 0))
    missing = tracked_links.tracked_url(public, tracked_links.sign(secret, 7, 5))
    text = f"book {mine} or {other} or {missing}."
    links = ["https://a.example/", "https://b.example/"]
    shown = tracked_links.untracked(text, public_url=public, message_id=7, links=links)
    assert shown == f"book https://b.example/ or {other} or {missing}."
