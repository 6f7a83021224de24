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


# The browser's zone (rule 5): weak evidence that may narrow the window, never widen it. ---------

TUESDAY_WINTER = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timezone", "postal_code", "phone", "browser", "expected", "source"),
    [
        # A zone set on purpose is the whole answer, whatever the browser said.
        (
            "America/Chicago",
            "83702",
            "+12085550123",
            "America/Los_Angeles",
            ("America/Chicago",),
            "set on purpose",
        ),
        # A Boise ZIP code with a Los Angeles browser: both must allow; times shown in Boise's.
        (
            None,
            "83702",
            None,
            "America/Los_Angeles",
            ("America/Boise", "America/Los_Angeles"),
            "ZIP code",
        ),
        (None, "83702", None, "America/Boise", ("America/Boise",), "ZIP code"),
        # 208 spans Mountain and Pacific: a Pacific browser picks the zone to show, adds none.
        (
            None,
            None,
            "+12085550123",
            "America/Los_Angeles",
            ("America/Los_Angeles", "America/Boise", "America/Denver"),
            "browser",
        ),
        (
            None,
            None,
            "+12085550123",
            "America/Chicago",
            ("America/Boise", "America/Los_Angeles", "America/Denver", "America/Chicago"),
            "area code",
        ),
        (
            None,
            None,
            "+13125550123",
            "America/New_York",
            ("America/Chicago", "America/New_York"),
            "area code",
        ),
        (
            None,
            "10001",
            None,
            "America/Chicago",
            ("America/New_York", "America/Chicago"),
            "ZIP code",
        ),
        (None, "85004", None, "America/Denver", ("America/Phoenix", "America/Denver"), "ZIP code"),
        (
            None,
            "96813",
            None,
            "America/Los_Angeles",
            ("Pacific/Honolulu", "America/Los_Angeles"),
            "ZIP code",
        ),
        # Honolulu to New York is the widest US gap (6 hours in summer): it still counts.
        (
            None,
            "96813",
            None,
            "America/New_York",
            ("Pacific/Honolulu", "America/New_York"),
            "ZIP code",
        ),
        # Nothing but the browser: the clinic's zone, narrowed by the browser's.
        (None, None, None, "America/New_York", ("America/Boise", "America/New_York"), "clinic"),
        # Half a world away is a trip or a VPN, not home: ignored, or no hours would be left.
        (None, "83702", None, "Asia/Kolkata", ("America/Boise",), "ZIP code"),
        (None, "83702", None, "Europe/Paris", ("America/Boise",), "ZIP code"),
        (None, "83702", None, "Not/AZone", ("America/Boise",), "ZIP code"),
    ],
)
def test_rule_5_the_browser_zone_only_adds_a_zone_to_intersect(
    timezone: str | None,
    postal_code: str | None,
    phone: str | None,
    browser: str,
    expected: tuple[str, ...],
    source: str,
) -> None:
    zones = windows.resolve_zones(timezone, postal_code, phone, BOISE, browser)
    assert tuple(z.key for z in zones) == expected
    found = windows.lead_zones(timezone, postal_code, phone, BOISE, browser)
    assert found.source.value == source
    shown = windows.lead_zone(timezone, BOISE, postal_code, phone, browser)
    assert shown.key == expected[0]
    # Without the browser the candidates are the same zones, less perhaps the browser's own.
    without = {z.key for z in windows.resolve_zones(timezone, postal_code, phone, BOISE)}
    assert without <= set(expected)
    assert set(expected) - without <= {browser}


def test_rule_5_the_browser_zone_is_shown_only_when_the_area_code_allows_it() -> None:
    # A 208 number: Pacific (Coeur d'Alene) is one of its zones, Chicago is not.
    assert windows.lead_zone(None, BOISE, None, "+12085550123", "America/Los_Angeles") == LA
    assert windows.lead_zone(None, BOISE, None, "+12085550123", "America/Chicago") == BOISE
    # A Boise ZIP code outranks a Pacific browser for display.
    assert windows.lead_zone(None, BOISE, "83402", "+12085550123", "America/Los_Angeles") == BOISE


def test_rule_5_a_boise_zip_and_a_pacific_browser_wait_for_8am_pacific_across_dst() -> None:
    """Sunday 8 March 2026 clocks spring forward. Care texts open at 08:00 local: Boise's
    08:00 comes an hour before Los Angeles', before and after the change alike."""
    zones = windows.resolve_zones(None, "83702", None, BOISE, "America/Los_Angeles")
    for day, opens_utc in [(7, 16), (8, 15), (9, 15)]:  # Sat MST/PST, Sun and Mon MDT/PDT
        boise_opens = datetime(2026, 3, day, 8, 0, tzinfo=BOISE)
        assert next_allowed(boise_opens, CARE, (BOISE,)) == boise_opens
        assert next_allowed(boise_opens, CARE, zones) == datetime(
            2026, 3, day, opens_utc, 0, tzinfo=UTC
        )


def test_rule_5_phoenix_keeps_standard_time_when_a_denver_browser_moves_its_clocks() -> None:
    """Arizona has no DST. In winter Phoenix and Denver agree; in summer Denver's 09:00 is
    Phoenix's 08:00, so the marketing window opens at 09:00 Phoenix and closes at 20:00 Denver."""
    zones = windows.resolve_zones(None, "85004", None, BOISE, "America/Denver")
    phoenix, denver = ZoneInfo("America/Phoenix"), ZoneInfo("America/Denver")
    winter = datetime(2026, 1, 13, 9, 0, tzinfo=phoenix)  # a Tuesday
    assert next_allowed(winter, MARKETING, zones) == winter
    summer = datetime(2026, 7, 14, 9, 0, tzinfo=denver)  # a Tuesday: 08:00 in Phoenix
    assert next_allowed(summer, MARKETING, (phoenix,)) == summer + timedelta(hours=1)
    assert next_allowed(summer, MARKETING, zones) == summer + timedelta(hours=1)
    # 19:30 in Denver is 18:30 in Phoenix; the window in Denver closes at 20:00.
    [(start, end)] = windows.allowed_intervals(
        MARKETING,
        zones,
        datetime(2026, 7, 14, 12, tzinfo=UTC),
        datetime(2026, 7, 15, 12, tzinfo=UTC),
    )
    assert start == datetime(2026, 7, 14, 9, 0, tzinfo=phoenix)
    assert end == datetime(2026, 7, 14, 20, 0, tzinfo=denver)


def test_rule_5_honolulu_and_a_los_angeles_browser_across_the_november_change() -> None:
    """Hawaii keeps HST; Los Angeles falls back on 1 November 2026. Care texts close at 21:00
    in Los Angeles, which is 18:00 in Honolulu in October and 19:00 after the change."""
    honolulu = ZoneInfo("Pacific/Honolulu")
    zones = windows.resolve_zones(None, "96813", None, BOISE, "America/Los_Angeles")
    for day, closes_honolulu in [(31, 18), (2, 19)]:
        month = 10 if day == 31 else 11
        opens = datetime(2026, month, day, 8, 0, tzinfo=honolulu)
        [(start, end)] = windows.allowed_intervals(CARE, zones, opens, opens + timedelta(hours=14))
        assert start == opens
        assert end == datetime(2026, month, day, closes_honolulu, 0, tzinfo=honolulu)


def test_rule_5_a_new_york_browser_holds_a_chicago_number_until_9am_central() -> None:
    chicago = ZoneInfo("America/Chicago")
    zones = windows.resolve_zones(None, None, "+13125550123", BOISE, "America/New_York")
    nine_new_york = datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # Tuesday
    assert next_allowed(nine_new_york, MARKETING, zones) == datetime(
        2026, 3, 10, 9, 0, tzinfo=chicago
    )


@settings(max_examples=150, deadline=None)
@given(
    home=st.sampled_from(US_ZONES),
    browser=st.sampled_from(US_ZONES),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    schedule=st.sampled_from([MARKETING, CARE]),
)
def test_rule_5_a_browser_zone_never_widens_the_window(
    home: str, browser: str, start: datetime, schedule: Schedule
) -> None:
    """Every instant allowed with the browser's zone is allowed without it."""
    clinic = ZoneInfo(home)
    without = windows.resolve_zones(None, None, None, clinic)
    narrowed = windows.resolve_zones(None, None, None, clinic, browser)
    end = start + timedelta(days=3)
    wide = windows.allowed_intervals(schedule, without, start, end)
    for low, high in windows.allowed_intervals(schedule, narrowed, start, end):
        assert any(w_low <= low and high <= w_high for w_low, w_high in wide), (low, high)
    # Between US zones some hours are always left.
    assert windows.next_allowed(start, schedule, narrowed) is not None
