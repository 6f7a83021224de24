"""The outbox: a message's whole life, from the plan to the provider's last word.

```
                planner.plan                  dispatch.claim_due
    (sequence) ───────────────► planned ──────────────────────────► queued
                                   │                                  │ send.send_batch
                                   │ withdrawals / gates (cancel)     ▼
                                   └──────────► cancelled ◄────── sending ──► failed
                                                                  │    │   (retry.send_after:
                                               send (no answer)   │    │    back to queued)
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
- `dispatch`: claims due rows, cuts them into send batches, reaps rows whose task vanished.
- `send`: sends a batch of queued rows, each at most once, the provider calls overlapped.
- `provider_calls`: the provider calls of a batch, side by side, bounded in time.
- `settle`: the guarded move of one row with its audit entry; counted and logged on commit.
- `send_path`: what sending needs (writer, policy, transports, throttle, retries), in one value.
- `retry`: capped exponential backoff with jitter.
- `outcome_metrics`: the send outcomes as Prometheus counters.
- `reports`: provider delivery reports (Twilio StatusCallback), per send attempt.
- `provider_errors`: what a provider's error means for the lead (landline, opted out, blocked).
- `withdrawals`: a revocation of consent and the cancellation of what it covered.
- `pauses`: the ops switch (everything, a channel, a sequence).
- `throttle`: the per-sender token bucket for texts.
- `alerts`: messages to staff (crisis, reply waiting) through the same outbox.
"""
