"""The outbox: a message's whole life, from the plan to the provider's last word.

Every arrow is one of `states.ARROWS`, moved only by `states.move()`; beside it, the module
that asks for it.

```
  planner (a sequence step), alerts (to staff)      replies.inbound (a TwiML answer)
                   │ born                                   │ born
                   ▼                                        ▼
   ┌───────────► scheduled ◄──────────┐                  replied
   │               │ dispatch.claim_due
   │ send: gate    ▼                  │ settle: transient error (retry: backoff)
   │ says later  queued ──────────────┼─ send: gate says never ──────────► skipped
   └───────────────┤ ▲ dispatch.reap  │  send: the template fails ───────► failed
                   │ └─ (task lost)   │
                   │ send: start (gates again at claim, under a per-lead lock)
                   ▼                  │
                sending ──────────────┴─ settle: permanent error ────────► failed
                   │  └── settle: no answer; dispatch.reap (crash) ──────► unknown
                   │ settle: ok                                              │ reports,
                   ▼                                                         │ ops.console:
                 sent ◄──────────────────────────────────────────────────────┘ mark sent
                   │ reports (per attempt)
                   └──► delivered | undelivered | failed | scheduled (try again)

  scheduled, queued ── withdrawals (an opt-out), planner (exit, reschedule) ──► cancelled
  scheduled, queued ── planner (no longer needed) ─────────────────────────► skipped
  scheduled ── version_moves (its step changed or went in a new version) ──► cancelled
  unknown ── ops.console: resend ─► scheduled      failed, undelivered ── ops: retry ─► scheduled
  scheduled ── ops.console: skip overdue (a pause ended with "skip") ──────► skipped
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
