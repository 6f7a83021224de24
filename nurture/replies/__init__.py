"""Replies: what people send back, and what nurture does about it.

- `inbound`: an inbound text: STOP/START/HELP, crisis words, a reply waiting for staff; and the
  rules an e-mail reply shares with a text (crisis actions, the staff inbox).
- `keywords`: recognising those words, in a text or an e-mail.
- `mail_reading`, `auto_replies`: reading one e-mail from the reply mailbox (pure).
- `email_replies`: recording and acting on it; `mailbox`: polling the mailbox over IMAP.
"""
