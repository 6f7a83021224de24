"""No text a lead types can become a header line, whatever encoded-words or line breaks it holds.

The three shapes from issue 10 (a q-encoded Bcc, a b-encoded Reply-To, a blank line that takes
over the body) and any text hypothesis can think of: the message parses back with exactly the
headers we set, and the Subject decodes to what was meant, on one line.
"""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.transports import OutgoingEmail
from nurture.transports.email_message import build_mime
from nurture.transports.header_text import (
    HeaderValueError,
    address,
    mailbox,
    one_line,
    unstructured,
)

EXPECTED_HEADERS = [
    "Subject",
    "From",
    "To",
    "Reply-To",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "MIME-Version",
    "Content-Type",
]
ATTACKS = [
    "=?utf-8?q?Ann=0D=0ABcc:_someone@example.org?=",
    "=?utf-8?b?QW5uDQpSZXBseS1UbzogZXZpbEBleGFtcGxlLm9yZw==?=",  # "Ann\r\nReply-To: evil@…"
    "=?utf-8?q?Ann=0D=0A=0D=0AYour_account_is_locked?=",
    "Ann\r\nBcc: someone@example.org",
    "Ann\nBcc: someone@example.org",
    "Ann\u2028Bcc: someone@example.org",
    "Ann\x85Bcc: someone@example.org",
]


def raw_message(subject: str) -> bytes:
    message = OutgoingEmail(
        to="lead@example.com",
        subject=subject,
        text="Hello",
        html="<p>Hello</p>",
        reference="7",
        headers={"List-Unsubscribe": "<https://clinic.example/u/token>"},
    )
    sender = "Idaho Ketamine, Clinic <care@clinic.example>"
    return build_mime(
        message, sender=sender, reply_to="Front Desk <desk@clinic.example>"
    ).as_bytes()


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("name", ATTACKS)
def test_an_encoded_word_or_line_break_in_lead_text_adds_no_header(name: str) -> None:
    raw = raw_message(f"Welcome to the clinic, {name}")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.keys() == EXPECTED_HEADERS
    assert b"\r\nBcc:" not in header_block(raw)
    assert header_block(raw).count(b"\r\nReply-To:") == 1
    # The body is still ours: the attacker's text never starts it.
    assert parsed.get_body(preferencelist=("plain",)).get_content().strip() == "Hello"  # type: ignore[union-attr]
    # Decoded, the subject shows the encoded-word as the literal text the lead typed.
    assert parsed["Subject"] == one_line(f"Welcome to the clinic, {name}")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_subject_parses_back_to_itself_with_no_extra_header(text: str) -> None:
    raw = raw_message(text)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.keys() == EXPECTED_HEADERS
    assert parsed["Subject"] == one_line(text)
    subject_lines = header_block(raw).split(b"\r\nFrom:")[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in subject_lines)


def test_plain_ascii_stays_readable_and_folds_at_spaces() -> None:
    value = unstructured("Subject", "Your free consultation is booked " * 4)
    lines = value.split("\r\n")
    assert len(lines) > 1
    assert all(line.startswith(" ") for line in lines[1:])
    assert "=?" not in value


def test_a_long_word_is_encoded_rather_than_overflowing_the_line() -> None:
    value = unstructured("Subject", "x" * 200)
    assert all(len(line) <= 78 for line in value.split("\r\n"))
    assert value.startswith("=?utf-8?b?")


def test_display_names_are_quoted_or_encoded() -> None:
    assert mailbox("From", "Clinic <c@clinic.example>") == "Clinic <c@clinic.example>"
    assert mailbox("From", "A, B <c@clinic.example>") == '"A, B" <c@clinic.example>'
    assert mailbox("From", "Zoë <c@clinic.example>") == "=?utf-8?b?Wm/Dqw==?= <c@clinic.example>"
    assert mailbox("From", "c@clinic.example") == "c@clinic.example"


@pytest.mark.parametrize(
    "value",
    ["ann@example.com\r\nBcc: x@example.org", "ann@exämple.com", "ünal@example.com", "a b@c.d", ""],
)
def test_addresses_that_are_not_plain_ascii_are_refused(value: str) -> None:
    with pytest.raises(HeaderValueError):
        address(value)
