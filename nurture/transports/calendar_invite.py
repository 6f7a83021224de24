"""An add-to-calendar file (iCalendar, RFC 5545) for one appointment: ``METHOD:PUBLISH``.

Built byte for byte here, like our e-mail headers: every text value is escaped (RFC 5545
§3.3.11: backslash, semicolon, comma and newline), control characters become spaces, and every
content line is folded at 75 octets (§3.1) without splitting a UTF-8 character, lines ending in
CRLF. A value can therefore never end its line and start a property of its own.

It says where and when, not why: the summary names the consultation and the clinic's short
name (no drug or diagnosis word: calendars show on lock screens and shared screens), and
nothing a lead typed is in it.

Which e-mails carry one is said by the template itself, on a Jinja comment of its own (it
renders to nothing and travels with every version of the template, as ``hipaa_category``
does)::

    {# attach: consult_invite -#}
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from nurture.transports import Attachment

FOLD_AT = 75  # octets per content line, CRLF not included (RFC 5545 §3.1)
MEDIA_TYPE = "text/calendar"
FILENAME = "consultation.ics"
PRODID = "-//nurture//consultation invite//EN"
_DECLARATION = re.compile(r"\{#-?\s*attach:\s*consult_invite\s*-?#\}")


def declares_invite(template_source: str) -> bool:
    """Whether a template asks for the consultation's calendar file."""
    return _DECLARATION.search(template_source) is not None


@dataclass(frozen=True)
class Appointment:
    uid: str  # stable for the booking: a later file with a higher sequence moves the event
    sequence: int
    start: datetime  # aware
    end: datetime  # aware
    stamp: datetime  # when this file was made
    summary: str
    location: str
    description: str


def escape_text(value: str) -> str:
    """An RFC 5545 TEXT value: nothing in it can end the line or the property."""
    flat = "".join(
        "\n" if char in "\r\n\u2028\u2029" else " " if unicodedata.category(char) == "Cc" else char
        for char in value.replace("\r\n", "\n")
    )
    return flat.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded into lines of at most 75 octets, joined by CRLF + space."""
    pieces: list[str] = []
    current, size, room = "", 0, FOLD_AT
    for char in line:
        width = len(char.encode())
        if size + width > room:
            pieces.append(current)
            current, size, room = "", 0, FOLD_AT - 1  # a continuation line starts with a space
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("calendar times must be aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(appointment: Appointment) -> bytes:
    """The VCALENDAR with one VEVENT, CRLF line ends, UTF-8."""
    if appointment.end <= appointment.start:
        raise ValueError("an appointment ends after it starts")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(appointment.uid)}",
        f"SEQUENCE:{int(appointment.sequence)}",
        f"DTSTAMP:{_utc(appointment.stamp)}",
        f"DTSTART:{_utc(appointment.start)}",
        f"DTEND:{_utc(appointment.end)}",
        f"SUMMARY:{escape_text(appointment.summary)}",
        f"LOCATION:{escape_text(appointment.location)}",
        f"DESCRIPTION:{escape_text(appointment.description)}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{fold(line)}\r\n" for line in lines).encode()


def invite(appointment: Appointment) -> Attachment:
    """The file as an e-mail attachment: ``text/calendar; method=PUBLISH``."""
    return Attachment(
        filename=FILENAME,
        media_type=MEDIA_TYPE,
        data=calendar(appointment),
        params={"charset": "utf-8", "method": "PUBLISH"},
    )
