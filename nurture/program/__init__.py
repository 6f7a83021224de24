"""The program: what a lead should receive, and when, as data.

- `sequences`: the sequence files (`config/sequences/*.yaml`): steps, triggers, exits.
- `conditions`: the `when:` expressions steps may carry.
- `windows`: the lead's local sending window (quiet hours, weekends, holidays, time zones).
- `area_codes`: which US states (and so which zones) an area code covers; a generated table.

Nothing here touches a message row; `nurture.outbox.planner` turns the program into rows.
"""
