"""The outbox: a message's whole life, from the plan to the provider's last word.

```
                planner.plan                  dispatch.claim_due
    (sequence) ───────────────► planned ──────────────────────────► queued
                                   │                                  │ dispatch.send_message
                                   │ withdrawals / gates (cancel)     ▼
                                   └──────────► cancelled ◄────── sending ──► failed
                                                                  │    │   (retry.send_after:
                                           dispatch (no answer)   │    │    back to queued)
                                                   unknown ◄──────┘    ▼
                                                     │ ops.console.settle_unknown
                                                     └──────────────► sent ──► delivered
                                                                        │        reports
                                                                        └──────► undelivered
                    replies.inbound marks a sent text `replied`
```

- `states`: the transitions as data and `move()`, the only code that writes `messages.status`.
- `planner`: turns a sequence's steps into planned rows for a lead.
- `gates`: the checks at claim and at send: consent, quiet hours, caps, pauses, conditions.
- `dispatch`: claims due rows, sends one, settles the outcome, retries, reaps stale rows.
- `reports`: provider delivery reports (Twilio StatusCallback), per send attempt.
- `provider_errors`: what a provider's error means for the lead (landline, opted out, blocked).
- `withdrawals`: a revocation of consent and the cancellation of what it covered.
- `pauses`: the ops switch (everything, a channel, a sequence).
- `throttle`: the per-sender token bucket for texts.
- `alerts`: messages to staff (crisis, reply waiting) through the same outbox.
"""
