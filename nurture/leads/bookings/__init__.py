"""Booking tools (Calendly, Cal.com, Acuity, Square) as lifecycle events (issue 13 §1).

One module per provider verifies its signature and reads its wire format into a
:class:`~nurture.leads.bookings.event.BookingEvent`; :mod:`.apply` applies any of them to its
lead once and in order; :mod:`.newcomers` finds or makes the lead; :mod:`.fetching` reads a
provider's API (outside any transaction) where its webhook carries only ids.
"""

from nurture.leads.bookings.apply import BookingResult, Outcome, Program, apply_delivery
from nurture.leads.bookings.event import BookingEvent, BookingKind, PayloadError, SignatureError

__all__ = [
    "BookingEvent",
    "BookingKind",
    "BookingResult",
    "Outcome",
    "PayloadError",
    "Program",
    "SignatureError",
    "apply_delivery",
]
