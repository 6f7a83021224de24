"""Replies: what people send back, and what nurture does about it.

- `inbound`: an inbound text: STOP/START/HELP, crisis words, a reply waiting for staff.
- `keywords`: recognising those words.
"""
