"""The clinic's staffed hours (clinic.yaml ``new_lead_notices.staffed``) as instants: whether
someone is there now, and what "within one business day" means.

One business day is one staffed day's worth of staffed time: a lead who signs up on Friday at
3 PM (closing at 6) is due a call by Monday at 3 PM; one who signs up on Saturday, by Monday's
closing. Nights, weekends and (with ``skip_holidays``) federal holidays do not count. The clinic's
own zone applies, so 08:00 stays 08:00 across daylight-saving changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nurture.config.clinic import Clinic
from nurture.program import windows

# Far enough to find an opening after any run of holidays and weekends.
LOOK_AHEAD = timedelta(days=21)
SOON = timedelta(days=6)
SECOND = timedelta(seconds=1)


def schedule(clinic: Clinic) -> windows.Schedule:
    return windows.Schedule.from_window(clinic.new_lead_notices.staffed)


def is_staffed(instant: datetime, clinic: Clinic) -> bool:
    # Only the next second is looked at: every sign-up asks (intake's cost).
    ahead = windows.allowed_intervals(schedule(clinic), [clinic.zone], instant, instant + SECOND)
    return bool(ahead) and ahead[0][0] == instant


def business_day(clinic: Clinic) -> timedelta:
    staffed = clinic.new_lead_notices.staffed
    return timedelta(minutes=staffed.end - staffed.start)


def one_business_day_after(start: datetime, clinic: Clinic) -> datetime:
    """When one business day of staffed time has passed since ``start``."""
    # A long weekend fits in the first look; only a run of holidays needs the second.
    for horizon in (SOON, LOOK_AHEAD):
        left = business_day(clinic)
        for opens, closes in windows.allowed_intervals(
            schedule(clinic), [clinic.zone], start, start + horizon
        ):
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
    raise ValueError("clinic.yaml new_lead_notices.staffed has no staffed hours ahead")
