"""Send windows, zones, holidays and caps (compliance rules 4, 5, 6).

The property tests check the one promise that matters, over every US zone and any instant
including DST changes: what next_allowed returns is inside the window in every candidate zone,
and nothing earlier was.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.config.policy import StateRule, load_policy
from nurture.program import windows
from nurture.program.windows import Schedule, is_holiday, next_allowed, schedule_for
from tests.conftest import REPO

POLICY = load_policy(REPO / "config")
US_ZONES = [
    "America/New_York", "America/Detroit", "America/Indiana/Indianapolis", "America/Chicago",
    "America/Denver", "America/Boise", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "America/Adak", "Pacific/Honolulu", "America/Puerto_Rico",
]  # fmt: skip
BOISE, LA = ZoneInfo("America/Boise"), ZoneInfo("America/Los_Angeles")
MARKETING = schedule_for(POLICY, "sms", "marketing")
CARE = schedule_for(POLICY, "sms", "care")


def allowed_in(instant: datetime, schedule: Schedule, zone: ZoneInfo) -> bool:
    """An independent oracle: read the local clock and compare."""
    local = instant.astimezone(zone)
    hours = schedule.days[local.weekday()]
    if hours is None or (schedule.skip_holidays and is_holiday(local.date())):
        return False
    minute = local.hour * 60 + local.minute
    return hours[0] <= minute < hours[1]


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))
zone_sets = st.one_of(
    st.sampled_from(US_ZONES).map(lambda z: (ZoneInfo(z),)),
    st.just((BOISE, LA)),  # area code 208: Mountain and Pacific
    st.lists(st.sampled_from(US_ZONES), min_size=2, max_size=3, unique=True).map(
        lambda zs: tuple(ZoneInfo(z) for z in zs)
    ),
)
schedules = st.sampled_from(
    [
        MARKETING,
        CARE,
        schedule_for(POLICY, "email", "marketing"),
        schedule_for(POLICY, "sms", "marketing", {"TX"}),
        schedule_for(POLICY, "sms", "marketing", {"CT", "FL"}),
        schedule_for(POLICY, "sms", "marketing", {"AL"}),
    ]
)


@settings(max_examples=400, deadline=None)
@given(now=instants, zones=zone_sets, schedule=schedules)
def test_rule_4_next_allowed_is_inside_the_window_in_every_zone(
    now: datetime, zones: tuple[ZoneInfo, ...], schedule: Schedule
) -> None:
    found = next_allowed(now, schedule, zones)
    if (
        found is None
    ):  # only when the zones never share an open minute (e.g. Hawaii + New York at 9–8)
        assert not any(
            all(allowed_in(now + timedelta(minutes=m), schedule, z) for z in zones)
            for m in range(0, 21 * 24 * 60, 30)
        )
        return
    assert found >= now
    for zone in zones:
        assert allowed_in(found, schedule, zone), (found, zone)
    if found > now:
        earlier = found - timedelta(minutes=1)
        assert earlier < now or not all(allowed_in(earlier, schedule, z) for z in zones)
    else:
        assert all(allowed_in(now, schedule, z) for z in zones)


@pytest.mark.parametrize(
    ("now", "zones", "expected"),
    [
        # Rule 5: a 208 number at 07:30 PT / 08:30 MT is deferred to 08:00 PT.
        ("2026-03-02T15:30:00+00:00", (BOISE, LA), "2026-03-02T16:00:00+00:00"),
        # Spring forward (Sun 8 Mar 2026): 08:00 MDT is 14:00 UTC, no longer 15:00.
        ("2026-03-08T06:00:00+00:00", (ZoneInfo("America/Denver"),), "2026-03-08T14:00:00+00:00"),
        # Fall back (Sun 1 Nov 2026): 08:00 MST is 15:00 UTC.
        ("2026-11-01T06:00:00+00:00", (ZoneInfo("America/Denver"),), "2026-11-01T15:00:00+00:00"),
        # 21:00 closes the window: 20:59:59 local is fine, 21:00 is tomorrow's 08:00.
        ("2026-06-10T03:59:00+00:00", (LA,), "2026-06-10T03:59:00+00:00"),
        ("2026-06-10T04:00:00+00:00", (LA,), "2026-06-10T15:00:00+00:00"),
        # Hawaii keeps no DST: 08:00 HST is 18:00 UTC all year.
        ("2026-07-01T12:00:00+00:00", (ZoneInfo("Pacific/Honolulu"),), "2026-07-01T18:00:00+00:00"),
    ],
)
def test_care_texts_wait_for_8am_local(
    now: str, zones: tuple[ZoneInfo, ...], expected: str
) -> None:
    assert next_allowed(datetime.fromisoformat(now), CARE, zones) == datetime.fromisoformat(
        expected
    )


def test_marketing_texts_skip_sundays_and_federal_holidays() -> None:
    # Fri 3 Jul 2026 is Independence Day observed, Sat 4 Jul the day itself, Sun closed anyway.
    friday_morning = datetime(2026, 7, 3, 16, 0, tzinfo=UTC)  # 10:00 MDT
    assert next_allowed(friday_morning, MARKETING, (BOISE,)) == datetime(
        2026, 7, 6, 15, 0, tzinfo=UTC
    )
    # Thanksgiving 2026 is Thu 26 Nov.
    thanksgiving = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    assert next_allowed(thanksgiving, MARKETING, (BOISE,)) == datetime(
        2026, 11, 27, 16, 0, tzinfo=UTC
    )


def test_rule_6_state_rules_narrow_the_window_and_the_strictest_wins() -> None:
    loose = Schedule(days=tuple((480, 1320) for _ in range(7)))  # 08:00–22:00 every day
    texas = loose.restrict(StateRule(start=540, end=1260, sunday=None))
    assert texas.days[0] == (540, 1260)
    sunday_rule = StateRule.model_validate(
        {"start": 540, "end": 1260, "sunday": {"start": 720, "end": 1260}}
    )
    assert loose.restrict(sunday_rule).days[6] == (720, 1260)
    both = loose.restrict(StateRule(start=540, end=1200)).restrict(
        StateRule(start=480, end=1200, cap_per_24h=3)
    )
    assert both.days[2] == (540, 1200)
    assert both.cap_per_24h == 3
    assert loose.restrict(StateRule(no_sunday=True, skip_holidays=True)).days[6] is None


def test_states_come_from_the_zip_code_and_the_area_code() -> None:
    assert windows.resolve_states(None, "33101", "+12085550123") == {"FL", "ID"}
    assert windows.resolve_states("TX", None, "+12125550123") == {"TX", "NY"}
    assert windows.resolve_states(None, None, "+14165550123") == frozenset()  # Canada


def test_washington_and_dc_numbers_carry_their_rules() -> None:
    # The geocoder calls them "Washington State" and "Washington D.C.": WA's rules applied to
    # none of 206, 253, 360, 425, 509 and 564 while states came from its descriptions.
    assert windows.resolve_states(None, None, "+12065550123") == {"WA"}
    assert windows.resolve_states(None, None, "+15095550123") == {"WA"}
    assert windows.resolve_states(None, None, "+12025550123") == {"DC"}
    seattle = schedule_for(
        POLICY, "sms", "marketing", windows.resolve_states(None, None, "+12065550123")
    )
    assert all(day is None or day[1] <= 20 * 60 for day in seattle.days)  # WA: texts end at 8 p.m.


def test_an_area_code_spanning_two_states_applies_both() -> None:
    # One 201 exchange is in New York: a 201 number may be under either state's rules.
    assert windows.resolve_states(None, None, "+12015550123") == {"NJ", "NY"}


def test_importing_windows_leaves_the_geocoder_unloaded() -> None:
    """Its data costs a process ~70 MB; the area-code table says what nurture needs of it."""
    probe = (
        "import sys, nurture.program.windows as w; w.resolve_states(None, None, '+12085550123'); "
        "w.resolve_zones(None, None, '+12085550123', w.ZoneInfo('UTC')); "
        "print(sorted(m for m in sys.modules if m.startswith('phonenumbers.geo')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_florida_residents_get_florida_hours_and_cap() -> None:
    florida = schedule_for(POLICY, "sms", "marketing", {"FL"})
    assert florida.cap_per_24h == 3
    assert all(day is None or day[1] <= 1200 for day in florida.days)


@pytest.mark.parametrize(
    ("timezone", "postal_code", "phone", "expected"),
    [
        ("America/Chicago", "83402", "+12085550123", ("America/Chicago",)),  # their own first
        (None, "83402", "+13055550123", ("America/Boise",)),  # then the ZIP code
        (
            None,
            None,
            "+12085550123",
            ("America/Boise", "America/Los_Angeles", "America/Denver"),
        ),  # then every zone of the area code, the clinic's first
        (None, None, "+18005550123", ("America/Boise",)),  # toll-free says nothing: the clinic
        (None, None, None, ("America/Boise",)),
        ("Not/AZone", None, "+13055550123", ("America/New_York",)),
    ],
)
def test_rule_5_zone_resolution(
    timezone: str | None, postal_code: str | None, phone: str | None, expected: tuple[str, ...]
) -> None:
    zones = windows.resolve_zones(timezone, postal_code, phone, BOISE)
    assert tuple(z.key for z in zones) == expected


def test_caps_release_when_the_oldest_send_leaves_the_24_hours() -> None:
    now = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
    sent = [now - timedelta(hours=h) for h in (23, 5, 1)]
    assert windows.cap_release(sent, 3, now) == now + timedelta(hours=1)
    assert windows.cap_release(sent[1:], 3, now) is None
    assert windows.cap_release([now - timedelta(hours=25)] * 5, 3, now) is None
    assert windows.cap_release(sent, None, now) is None


def test_rule_5_without_a_zip_code_quiet_hours_hold_in_every_zone_of_the_area_code() -> None:
    """A real 208-522 number (an Idaho Falls exchange, Mountain time) was texted at 07:30 Pacific:
    its owner may live in north Idaho. The window is the intersection over 208's zones."""
    phone = "+12085221234"
    zones = windows.resolve_zones(None, None, phone, ZoneInfo("America/Boise"))
    assert {z.key for z in zones} >= {"America/Boise", "America/Los_Angeles"}
    marketing = schedule_for(POLICY, "sms", "marketing", windows.resolve_states(None, None, phone))
    opens = marketing.days[1]
    assert opens is not None
    nine_mountain = datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("America/Boise")) + timedelta(
        minutes=opens[0] - 540
    )  # Tuesday: the marketing window opens in Boise
    mountain_only = (ZoneInfo("America/Denver"),)  # what the exchange alone says
    assert windows.next_allowed(nine_mountain, marketing, mountain_only) == nine_mountain
    # An hour earlier on the Pacific coast: the text waits until the window opens there too.
    assert windows.next_allowed(nine_mountain, marketing, zones) == nine_mountain + timedelta(
        hours=1
    )
