"""The program: what a lead should receive, and when, as data.

- `sequences`: a sequence's shape (steps, triggers, exits), as the files and the studio write it.
- `sequence_store`: its versions in the database (the files seed them, the studio publishes
  new ones) and the catalog as published, re-read after any publish.
- `conditions`: the `when:` expressions steps may carry.
- `windows`: the lead's local sending window (quiet hours, weekends, holidays, time zones).
- `area_codes`: which US states (and so which zones) an area code covers; a generated table.

Nothing here touches a message row; `nurture.outbox.planner` turns the program into rows.
"""
