"""The booking confirmation's calendar file (RFC 5545): text never leaves its property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from nurture.transports.calendar_invite import Appointment, calendar, escape_text, fold

START = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)


def appointment(**overrides: object) -> Appointment:
    values: dict[str, object] = {
        "uid": "consult-1@clinic.example",
        "sequence": 2,
        "start": START,
        "end": START + timedelta(hours=1),
        "stamp": START - timedelta(days=3),
        "summary": "Consultation at KI Idaho",
        "location": "2000 Channing Way, Suite 100, Idaho Falls, ID 83404",
        "description": "To change the time, call (208) 555-0134.",
    }
    values.update(overrides)
    return Appointment(**values)  # type: ignore[arg-type]


def unfold(data: bytes) -> list[str]:
    return data.decode().replace("\r\n ", "").split("\r\n")[:-1]


def test_rule_17_the_file_is_one_published_event_in_utc() -> None:
    lines = unfold(calendar(appointment()))
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "METHOD:PUBLISH" in lines
    assert "DTSTART:20260306T173000Z" in lines and "DTEND:20260306T183000Z" in lines
    assert "LOCATION:2000 Channing Way\\, Suite 100\\, Idaho Falls\\, ID 83404" in lines


@given(st.text(max_size=400))
def test_rule_17_any_text_stays_inside_its_property(value: str) -> None:
    data = calendar(appointment(location=value, summary=value))
    raw_lines = data.split(b"\r\n")
    assert raw_lines[-1] == b""
    assert all(len(line) <= 75 for line in raw_lines)  # folded at 75 octets
    assert all(b"\r" not in line and b"\n" not in line for line in raw_lines)
    lines = unfold(data)
    assert len(lines) == 18  # no line of its own, whatever the text
    assert [line for line in lines if line.startswith("LOCATION:")] == [
        f"LOCATION:{escape_text(value)}"
    ]


def test_rule_17_folding_never_splits_a_character() -> None:
    folded = fold("SUMMARY:" + "é" * 100)
    for line in folded.encode().split(b"\r\n"):
        line.decode()  # each line is whole UTF-8
        assert len(line) <= 75
    assert folded.replace("\r\n ", "") == "SUMMARY:" + "é" * 100
