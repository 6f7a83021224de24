"""A click on a tracked link: where it goes, and the record that it happened.

No IP address or user agent is stored: the funnel needs only that this lead followed this
message's link, and an IP tied to a lead's health-care inquiry is personal data nurture has no
use for (and a mail scanner's IP would say nothing true about the person anyway). What a mail
scanner or a link preview fetches is not a click either: see :data:`MACHINE_WINDOW`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from nurture.content import tracked_links
from nurture.db.models import LinkClick, Message

# Nobody gets a message, opens it and taps a link this soon after it left: a follow sooner is
# a machine. Mail security gateways (Proofpoint, Mimecast, Safe Links) fetch every link of an
# e-mail on delivery, and phones fetch a text's link to draw its preview. Redirected all the
# same (a scanner that gets an error may quarantine the mail), never counted as a click.
MACHINE_WINDOW = timedelta(seconds=10)


def follow(
    session: Session, ref: tracked_links.LinkRef, *, now: datetime, counted: bool = True
) -> str | None:
    """The URL behind a genuine token, with the click recorded (the caller commits); None when
    the message or that link of it does not exist. Every click a person could have made is
    recorded, repeats too (the funnel counts distinct leads); one a machine made (``counted``
    False for a HEAD request, or within :data:`MACHINE_WINDOW` of the send) is not."""
    message = session.get(Message, ref.message_id)
    if message is None:
        return None
    url = tracked_links.target(tracked_links.stored_links(message.context), ref.index)
    if url is None:
        return None
    if counted and not by_machine(message, now=now):
        session.add(
            LinkClick(message_id=message.id, lead_id=message.lead_id, url=url, clicked_at=now)
        )
    return url


def by_machine(message: Message, *, now: datetime) -> bool:
    """Whether a follow of this message's link came too soon for a person. A message not yet
    recorded as sent (its provider took it a moment ago) counts as just sent."""
    return message.sent_at is None or now - message.sent_at < MACHINE_WINDOW
