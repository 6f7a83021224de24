"""Time zones, send windows, holidays and frequency caps. Pure functions: no I/O, no clock.

A message may leave only inside the window allowed for its channel and purpose in the
recipient's own time zone. When the zone is uncertain (a phone number whose area code spans
Mountain and Pacific time) the allowed window is the intersection over every candidate zone,
so nobody is texted at 7:30 in the morning because we guessed the wrong side of a border.
The browser's zone is one more candidate: it can narrow the window, never widen it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
import zipcodes

from nurture.config.policy import Policy, StateRule, Window
from nurture.db.models import Lead
from nurture.program.area_codes import AREA_CODE_STATES, AREA_CODE_ZONES

Interval = tuple[datetime, datetime]  # [start, end) in UTC
DAY = 1440
# An area code that spans more zones than this (toll-free, non-geographic) says nothing useful.
MAX_AREA_CODE_ZONES = 4
HORIZON = timedelta(days=21)
# A browser zone this far from the ZIP code's or the area code's zones is not where they live.
# Six hours spans every US zone, Honolulu to New York, in summer and in winter.
MAX_BROWSER_GAP = timedelta(hours=6)
# Two instants to compare UTC offsets at: one in winter, one in summer (DST on either side).
_OFFSET_PROBES = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))


@dataclass(frozen=True)
class Schedule:
    """Allowed local minutes [start, end) for each weekday (Monday = 0); None: closed all day."""

    days: tuple[tuple[int, int] | None, ...]
    skip_holidays: bool = False
    cap_per_24h: int | None = None
    cap_per_7d: int | None = None

    @property
    def capped(self) -> bool:
        """Whether another send to the same lead could use up this message's allowance."""
        return self.cap_per_24h is not None or self.cap_per_7d is not None

    @property
    def cap_lookback(self) -> timedelta:
        """How far back the sends that count against the caps may lie."""
        return timedelta(days=7) if self.cap_per_7d is not None else timedelta(hours=24)

    @classmethod
    def from_window(cls, window: Window) -> Schedule:
        open_days = window.weekdays()
        return cls(
            days=tuple(
                (window.start, window.end) if day in open_days else None for day in range(7)
            ),
            skip_holidays=window.skip_holidays,
        )

    def restrict(self, rule: StateRule) -> Schedule:
        """The stricter of this schedule and a state's rule, day by day."""
        days = list(self.days)
        for day in range(7):
            hours = days[day]
            if hours is None:
                continue
            start, end = hours
            if day == 6 and rule.no_sunday:
                days[day] = None
                continue
            limit = (rule.sunday.start, rule.sunday.end) if day == 6 and rule.sunday else None
            limit = limit or (rule.start or 0, rule.end or DAY)
            start, end = max(start, limit[0]), min(end, limit[1])
            days[day] = (start, end) if start < end else None
        caps = [c for c in (self.cap_per_24h, rule.cap_per_24h) if c is not None]
        return replace(
            self,
            days=tuple(days),
            skip_holidays=self.skip_holidays or rule.skip_holidays,
            cap_per_24h=min(caps) if caps else None,
        )


def schedule_for(
    policy: Policy, channel: str, purpose: str, states: Iterable[str] = ()
) -> Schedule:
    """The schedule for a message: the policy's window, narrowed by each state rule that applies."""
    windows = getattr(policy.windows, channel)
    window = getattr(windows, purpose, None) or windows.care
    schedule = Schedule.from_window(window)
    if channel == "sms" and purpose == "marketing":
        schedule = replace(
            schedule,
            cap_per_24h=policy.caps.sms_marketing_per_24h,
            cap_per_7d=policy.caps.sms_marketing_per_7d,
        )
        for state in sorted(set(states)):
            rule = policy.states.get(state)
            if rule is not None:
                schedule = schedule.restrict(rule)
    return schedule


@lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year, observed=True).keys())


def is_holiday(day: date) -> bool:
    return day in _federal_holidays(day.year)


def _zone_intervals(
    schedule: Schedule, zone: ZoneInfo, start: datetime, end: datetime
) -> list[Interval]:
    intervals: list[Interval] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        hours = schedule.days[day.weekday()]
        if hours is not None and not (schedule.skip_holidays and is_holiday(day)):
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            # Adding to an aware datetime moves the wall clock: 09:00 stays 09:00 on DST days.
            opens = (midnight + timedelta(minutes=hours[0])).astimezone(UTC)
            closes = (midnight + timedelta(minutes=hours[1])).astimezone(UTC)
            if intervals and intervals[-1][1] >= opens:
                intervals[-1] = (intervals[-1][0], max(intervals[-1][1], closes))
            elif opens < closes:
                intervals.append((opens, closes))
        day += timedelta(days=1)
    return intervals


def _intersect(left: list[Interval], right: list[Interval]) -> list[Interval]:
    result: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return result


def allowed_intervals(
    schedule: Schedule, zones: Sequence[ZoneInfo], start: datetime, end: datetime
) -> list[Interval]:
    """The UTC intervals between start and end that are allowed in every one of ``zones``."""
    result: list[Interval] | None = None
    for zone in zones:
        intervals = _zone_intervals(schedule, zone, start, end)
        result = intervals if result is None else _intersect(result, intervals)
    return [(max(s, start), min(e, end)) for s, e in (result or []) if e > start and s < end]


def next_allowed(now: datetime, schedule: Schedule, zones: Sequence[ZoneInfo]) -> datetime | None:
    """The earliest instant at or after ``now`` inside the window in every zone (None: not soon)."""
    intervals = allowed_intervals(schedule, zones, now, now + HORIZON)
    return intervals[0][0] if intervals else None


def cap_release(
    sent_at: Iterable[datetime],
    cap: int | None,
    now: datetime,
    *,
    window: timedelta = timedelta(hours=24),
) -> datetime | None:
    """When one more message fits under ``cap`` per rolling ``window``; None if it fits now."""
    if cap is None:
        return None
    recent = sorted(t for t in sent_at if now - window < t <= now)
    if len(recent) < cap:
        return None
    if cap == 0:
        return now + HORIZON
    return recent[len(recent) - cap] + window


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=4096)
def _zip_record(postal_code: str) -> dict[str, str] | None:
    try:
        matches: list[dict[str, str]] = zipcodes.matching(postal_code[:5])  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):
        return None
    return matches[0] if matches else None


def _parse_phone(phone: str | None) -> phonenumbers.PhoneNumber | None:
    if not phone:
        return None
    try:
        return phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None


class ZoneSource(StrEnum):
    """Where the zone a lead's times are shown in came from, strongest first."""

    ON_PURPOSE = "set on purpose"
    ZIP_CODE = "ZIP code"
    AREA_CODE = "area code"
    BROWSER = "browser"
    CLINIC = "clinic"


@dataclass(frozen=True)
class LeadZones:
    """Every zone a lead may be in (the window must hold in each) and where the first came from.

    ``zones[0]`` is the one to show their times in."""

    zones: tuple[ZoneInfo, ...]
    source: ZoneSource
    # The zones of the phone's area code, when those are what the zones rest on.
    area_code: str | None = None
    # The browser's zone when it narrowed the window (it differs from every other candidate).
    browser: ZoneInfo | None = None

    @property
    def shown(self) -> ZoneInfo:
        return self.zones[0]


def _same(zone: ZoneInfo, zones: Iterable[ZoneInfo]) -> bool:
    return any(zone.key == other.key for other in zones)


def _gap(left: ZoneInfo, right: ZoneInfo) -> timedelta:
    """The larger difference of UTC offsets in winter and in summer."""
    gaps = []
    for moment in _OFFSET_PROBES:
        left_offset = moment.astimezone(left).utcoffset() or timedelta()
        right_offset = moment.astimezone(right).utcoffset() or timedelta()
        gaps.append(abs(left_offset - right_offset))
    return max(gaps)


def _home_evidence(postal_code: str | None, phone: str | None, clinic_zone: ZoneInfo) -> LeadZones:
    """What the ZIP code, else the phone's area code, else the clinic say."""
    record = _zip_record(postal_code) if postal_code else None
    from_zip = _zone(record.get("timezone")) if record else None
    if from_zip is not None:
        return LeadZones((from_zip,), ZoneSource.ZIP_CODE)
    number = _parse_phone(phone)
    if number is not None and number.country_code == 1:
        area_code = str(number.national_number)[:3]
        names = AREA_CODE_ZONES.get(area_code, ())
        zones = [z for z in (_zone(name) for name in names) if z is not None]
        if 0 < len(zones) <= MAX_AREA_CODE_ZONES:
            zones.sort(key=lambda zone: zone.key != clinic_zone.key)
            return LeadZones(tuple(zones), ZoneSource.AREA_CODE, area_code=area_code)
    return LeadZones((clinic_zone,), ZoneSource.CLINIC)


def lead_zones(
    timezone: str | None,
    postal_code: str | None,
    phone: str | None,
    clinic_zone: ZoneInfo,
    browser_timezone: str | None = None,
) -> LeadZones:
    """The zones a lead may be in, and where the one to show their times in came from.

    A zone set on purpose (by the person or by staff) is the whole answer. Otherwise the ZIP
    code's zone; else every zone of the phone's area code, not the one zone of its exchange:
    people keep their number when they move, so a 208 number may ring in Boise (Mountain) or in
    Coeur d'Alene (Pacific), and quiet hours must hold in both; else the clinic's. Among an area
    code's zones the clinic's comes first to show times in: most people who ask a clinic live
    near it.

    The browser's zone is weak evidence (people travel, laptops keep the zone they were set up
    in). It is added as one more zone whose hours must hold, so it can only narrow the window,
    never widen it past what the ZIP code and the area code allow; and it picks the zone to show
    times in only when it is one of the area code's. A browser more than ``MAX_BROWSER_GAP``
    from the other candidates is abroad or behind a VPN, not at home: intersecting with it would
    leave almost no hours (and none at all with 11-hour windows half a world apart), so that
    reminders for a consult in Idaho would never go; it is ignored."""
    own = _zone(timezone)
    if own is not None:
        return LeadZones((own,), ZoneSource.ON_PURPOSE)
    home = _home_evidence(postal_code, phone, clinic_zone)
    browser = _zone(browser_timezone)
    if browser is None:
        return home
    if _same(browser, home.zones):
        if home.source is not ZoneSource.AREA_CODE:
            return home
        # The browser says which of the area code's zones they are in.
        others = tuple(zone for zone in home.zones if zone.key != browser.key)
        return replace(home, zones=(browser, *others), source=ZoneSource.BROWSER)
    if any(_gap(browser, zone) > MAX_BROWSER_GAP for zone in home.zones):
        return home
    return replace(home, zones=(*home.zones, browser), browser=browser)


def zones_of(lead: Lead, clinic_zone: ZoneInfo) -> LeadZones:
    """:func:`lead_zones` for a lead as stored: the one way code asks where a lead is."""
    return lead_zones(
        lead.timezone, lead.postal_code, lead.phone, clinic_zone, lead.browser_timezone
    )


def resolve_zones(
    timezone: str | None,
    postal_code: str | None,
    phone: str | None,
    clinic_zone: ZoneInfo,
    browser_timezone: str | None = None,
) -> tuple[ZoneInfo, ...]:
    """Every zone the lead may be in (see ``lead_zones``); callers intersect their windows.
    The first is the one to show times in."""
    return lead_zones(timezone, postal_code, phone, clinic_zone, browser_timezone).zones


def lead_zone(
    timezone: str | None,
    clinic_zone: ZoneInfo,
    postal_code: str | None = None,
    phone: str | None = None,
    browser_timezone: str | None = None,
) -> ZoneInfo:
    """One zone to show a lead's local time in: the first candidate (the most likely one)."""
    return lead_zones(timezone, postal_code, phone, clinic_zone, browser_timezone).shown


def state_for_postal_code(postal_code: str | None) -> str | None:
    record = _zip_record(postal_code) if postal_code else None
    return record.get("state") if record else None


def states_for_phone(phone: str | None) -> tuple[str, ...]:
    """The states a US number's area code serves (nurture/program/area_codes.py; one, for all but a
    few). Not phonenumbers' geocoder: its data costs every process ~70 MB for this one fact."""
    number = _parse_phone(phone)
    if number is None or phonenumbers.region_code_for_number(number) != "US":
        return ()
    return AREA_CODE_STATES.get(str(number.national_number)[:3], ())


def resolve_states(state: str | None, postal_code: str | None, phone: str | None) -> frozenset[str]:
    """Every state whose rules apply: residence (stored or from ZIP) and the area code's states."""
    found = {state, state_for_postal_code(postal_code), *states_for_phone(phone)}
    return frozenset(s for s in found if s)


def phone_region(phone: str | None) -> str | None:
    number = _parse_phone(phone)
    return phonenumbers.region_code_for_number(number) if number is not None else None
