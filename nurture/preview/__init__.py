"""Previews: what would happen, without sending anything.

- `simulation`: a hypothetical lead run through the real planner and gates.
- `sequence_overview`: a sequence's steps, timings and segment counts for its page.
- `drafts`: previews and test sends of template drafts in the studio.
"""
