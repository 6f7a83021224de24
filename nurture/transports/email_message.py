"""Building the MIME message every e-mail transport sends.

``multipart/alternative`` (text and HTML); with attachments (a booking's calendar file),
``multipart/mixed`` holding the alternative part and then each attachment.
"""

from __future__ import annotations

import base64
import email.policy
import re
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from nurture import clock
from nurture.transports import Attachment, OutgoingEmail, header_text

# Every header is built by header_text and stored raw, never refolded (refold_source="none"):
# Python's own folding RFC 2047-encodes a long List-Unsubscribe URL into something mail clients
# cannot read (stack-notes), and it decodes encoded-words hidden in lead text into real CR/LF
# (CVE-2024-6923), which would let a first name add a Bcc: line. 76 columns keeps
# quoted-printable body lines within RFC 2045's limit, since bodies are encoded under this policy.
POLICY = email.policy.SMTP.clone(max_line_length=76, refold_source="none")
# What an attachment's file name, media type and parameters may be: fixed words of ours.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9.+-]+")


def sender_domain(sender: str) -> str:
    return header_text.address_of(sender).rpartition("@")[2]


def build_mime(message: OutgoingEmail, *, sender: str, reply_to: str | None = None) -> EmailMessage:
    """The MIME message; raises HeaderValueError for an address that is not plain ASCII."""
    mime = EmailMessage(policy=POLICY)
    mime.set_raw("Subject", header_text.unstructured("Subject", message.subject))
    mime.set_raw("From", header_text.mailbox("From", sender))
    mime.set_raw("To", header_text.address(message.to))
    if reply_to:
        mime.set_raw("Reply-To", header_text.mailbox("Reply-To", reply_to))
    mime.set_raw("Date", format_datetime(clock.utcnow()))
    message_id = make_msgid(idstring=message.reference, domain=sender_domain(sender))
    mime.set_raw("Message-ID", header_text.raw_line("Message-ID", message_id))
    for name, value in message.headers.items():
        mime.set_raw(name, header_text.raw_line(name, value))
    # Quoted-printable survives any relay with 8-bit content and long lines.
    mime.set_content(message.text, subtype="plain", cte="quoted-printable")
    mime.add_alternative(message.html, subtype="html", cte="quoted-printable")
    if message.attachments:
        mime.make_mixed()  # the alternative part moves inside; the attachments follow it
        for attachment in message.attachments:
            mime.attach(_attachment_part(attachment))
    return mime


def _attachment_part(attachment: Attachment) -> EmailMessage:
    """One attachment, its headers set raw like every other (base64: its bytes arrive exact,
    CRLF line ends included, which iCalendar requires)."""
    words = [attachment.filename, *attachment.params.keys(), *attachment.params.values()]
    if not _MEDIA_TYPE.fullmatch(attachment.media_type) or not all(
        _TOKEN.fullmatch(word) for word in words
    ):
        raise header_text.HeaderValueError(
            f"attachment {attachment.filename!r}: name, type and parameters must be plain words"
        )
    params = "".join(f"; {name}={value}" for name, value in attachment.params.items())
    part = EmailMessage(policy=POLICY)
    part.set_raw(
        "Content-Type",
        header_text.raw_line("Content-Type", f"{attachment.media_type}{params}"),
    )
    part.set_raw(
        "Content-Disposition",
        header_text.raw_line(
            "Content-Disposition", f'attachment; filename="{attachment.filename}"'
        ),
    )
    part.set_raw("Content-Transfer-Encoding", "base64")
    part.set_payload(base64.encodebytes(attachment.data).decode("ascii"))
    return part
