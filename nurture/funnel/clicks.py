"""A click on a tracked link: where it goes, and the record that it happened.

No IP address or user agent is stored: the funnel needs only that this lead followed this
message's link, and an IP tied to a lead's health-care inquiry is personal data nurture has no
use for (and a mail scanner's IP would say nothing true about the person anyway).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from nurture.content import tracked_links
from nurture.db.models import LinkClick, Message


def follow(session: Session, ref: tracked_links.LinkRef, *, now: datetime) -> str | None:
    """The URL behind a genuine token, with the click recorded (the caller commits); None when
    the message or that link of it does not exist. Every click is recorded, repeats too: the
    funnel counts distinct leads."""
    message = session.get(Message, ref.message_id)
    if message is None:
        return None
    url = tracked_links.target(tracked_links.stored_links(message.context), ref.index)
    if url is None:
        return None
    session.add(LinkClick(message_id=message.id, lead_id=message.lead_id, url=url, clicked_at=now))
    return url
