"""The funnel (issue 15 §2): which messages lead to booked consults.

- `stages`: the stages a lead passes, from lifecycle events; how "lost" is derived.
- `clicks`: following a tracked link (the click record).
- `attribution`: last-touch credit of a booking to the message before it.
- `numbers`: the funnel's numbers per view, pure functions over plain rows (definitions here).
- `cohorts`: sign-ups by ISO week in the clinic's zone and how far each week got.
- `report`: the one short read of the rows, and the report the page, CSV and CLI all show.
"""
