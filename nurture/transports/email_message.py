"""Building the MIME message every e-mail transport sends."""

from __future__ import annotations

import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from nurture import clock
from nurture.transports import OutgoingEmail

# Python's default policy folds a long header such as a List-Unsubscribe URL by RFC 2047-encoding
# it: it round-trips through Python, but mail clients see a broken header (stack-notes). So the
# headers we add are stored raw and never refolded (refold_source="none"), while headers set the
# normal way (Subject, From, To) still fold correctly. 76 columns keeps quoted-printable body
# lines within RFC 2045's limit, since bodies are encoded under the message's policy.
POLICY = email.policy.SMTP.clone(max_line_length=76, refold_source="none")


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def build_mime(message: OutgoingEmail, *, sender: str, reply_to: str | None = None) -> EmailMessage:
    mime = EmailMessage(policy=POLICY)
    mime["Subject"] = message.subject
    mime["From"] = sender
    mime["To"] = Address(addr_spec=message.to)
    if reply_to:
        mime["Reply-To"] = reply_to
    mime["Date"] = format_datetime(clock.utcnow())
    mime["Message-ID"] = make_msgid(idstring=message.reference, domain=sender_domain(sender))
    for name, value in message.headers.items():
        if not value.isascii() or "\r" in value or "\n" in value or len(name) + len(value) > 990:
            raise ValueError(f"header {name} must be one line of ASCII under 990 characters")
        mime.set_raw(name, value)
    # Quoted-printable survives any relay with 8-bit content and long lines.
    mime.set_content(message.text, subtype="plain", cte="quoted-printable")
    mime.add_alternative(message.html, subtype="html", cte="quoted-printable")
    return mime
