"""The embedded transport: each message becomes a file under ``var/outbox/``.

Files are written to a temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

from nurture import clock
from nurture.transports import OutgoingEmail, OutgoingSms
from nurture.transports.email_message import build_mime


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _find(directory: Path, reference: str, suffix: str) -> str | None:
    """The id :meth:`send` answered for the first file written for ``reference``, if any."""
    for path in sorted(directory.glob(f"*-{reference}{suffix}")):
        return f"outbox-{path.stem}"
    return None


def _stem(reference: str) -> str:
    return f"{clock.utcnow():%Y%m%dT%H%M%S%fZ}-{reference}"


class OutboxEmailTransport:
    reaches_inboxes = False  # files in var/outbox/ reach no one

    def __init__(self, directory: Path, *, sender: str, reply_to: str | None) -> None:
        self.directory = directory / "email"
        self.sender = sender
        self.reply_to = reply_to

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        """The outbox file written for this message, if the write finished before a crash."""
        return _find(self.directory, reference, ".eml")

    def close(self) -> None:
        pass  # nothing held open

    def send(self, email: OutgoingEmail) -> str:
        stem = _stem(email.reference)
        mime = build_mime(email, sender=self.sender, reply_to=self.reply_to)
        _write_atomically(self.directory / f"{stem}.eml", mime.as_bytes())
        return f"outbox-{stem}"


class OutboxSmsTransport:
    """Files, not texts: it has no Reassigned Numbers Database to ask (it is no
    ``ReassignedLookup``), so the send path asks nothing for it, as if the answer were "no
    data"."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory / "sms"
        self.sender = sender

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        """The outbox file written for this message, if the write finished before a crash."""
        return _find(self.directory, reference, ".txt")

    def close(self) -> None:
        pass  # nothing held open

    def send(self, sms: OutgoingSms) -> str:
        stem = _stem(sms.reference)
        text = (
            f"To: {sms.to}\nFrom: {self.sender}\nDate: {clock.utcnow().isoformat()}\n\n{sms.body}\n"
        )
        _write_atomically(self.directory / f"{stem}.txt", text.encode())
        return f"outbox-{stem}"
