"""The MIME message on the wire: headers unfolded and unmangled, bodies quoted-printable."""

from __future__ import annotations

import pytest

from nurture.transports import OutgoingEmail
from nurture.transports.email_message import build_mime

LONG_URL = "https://nurture.example.org/u/" + "A" * 120


def build(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "to": "ana@example.com",
        "subject": "Your consultation",
        "text": "Hello " + "x" * 200,
        "html": "<p>" + "y" * 200 + "</p>",
        "reference": "42",
        "headers": {
            "List-Unsubscribe": f"<{LONG_URL}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    values.update(overrides)
    return build_mime(OutgoingEmail(**values), sender="Clinic <care@clinic.example>").as_bytes()  # type: ignore[arg-type]


def test_list_unsubscribe_stays_one_raw_line() -> None:
    raw = build()
    assert f"\r\nList-Unsubscribe: <{LONG_URL}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n", 1)[0]


def test_body_lines_respect_quoted_printable_limits() -> None:
    body = build(text="é" * 300).split(b"\r\n\r\n", 1)[1]
    assert b"Content-Transfer-Encoding: quoted-printable" in body
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_a_non_ascii_subject_is_encoded_and_folded() -> None:
    raw = build(subject="Ihre Beratung am Dienstag – bitte bestätigen Sie den Termin " * 2)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?b?" in head.split(b"\r\nFrom:")[0]
    assert (
        max(len(line) for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:"))
        <= 78
    )


@pytest.mark.parametrize("value", ["two\r\nlines", "bad\nline", "ünïcode"])
def test_header_injection_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="one line of ASCII"):
        build(headers={"X-Test": value})
