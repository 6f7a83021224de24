"""Reading what the outbox transport wrote."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class OutboxSms:
    to: str
    body: str
    path: Path


def emails(outbox: Path) -> list[EmailMessage]:
    found = []
    for path in sorted((outbox / "email").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def texts(outbox: Path) -> list[OutboxSms]:
    found = []
    for path in sorted((outbox / "sms").glob("*.txt")):
        head, _, body = path.read_text().partition("\n\n")
        headers = dict(line.split(": ", 1) for line in head.splitlines())
        found.append(OutboxSms(to=headers["To"], body=body.rstrip("\n"), path=path))
    return found
