"""Consent: the append-only ledger of what each person agreed to, and the tokens that prove a link.

- `ledger`: consent events per (channel, purpose); the current state is the latest event.
- `tokens`: HMAC tokens for unsubscribe and preference links.
- `export`: a person's consent history as JSON or CSV, for an audit or a dispute.
- `disclosures`: every version of the consent wording ever shown, and the evidence of one box.

A withdrawal also stops the messages it covers; that half lives in
`nurture.outbox.withdrawals`, because only the outbox moves a message.
"""

from nurture.consent.ledger import (
    LEDGER_PURPOSES,
    ConsentState,
    current,
    current_many,
    record,
    restorable_sms_purposes,
    restore_sms,
)

__all__ = [
    "LEDGER_PURPOSES",
    "ConsentState",
    "current",
    "current_many",
    "record",
    "restorable_sms_purposes",
    "restore_sms",
]
