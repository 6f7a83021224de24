"""The ops charts' series (nurture.ops.series) on PostgreSQL and SQLite, from messages seeded at
known instants: sends and lateness per bucket, failures per code, zero-filled, labelled in the
clinic's zone across DST; and the ops page drawing them for both ranges."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from sqlalchemy import update

from nurture.db.models import Message, MessageStatus
from nurture.ops import series
from nurture.runtime import Services
from nurture.web import create_app
from tests.db.test_admin_pages import Browser, sign_in
from tests.db.test_ops_pages import rows, set_rows, sign_up_leads
from tests.unit.test_charts import Drawn, read_chart

BOISE = ZoneInfo("America/Boise")  # config/clinic.yaml's zone: UTC-7 in winter, UTC-6 in summer
NOW = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)  # 11:30 in Boise, a Tuesday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def ops_staff(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "ops")
    yield browser
    browser.client.close()


def blank_slate(services: Services, leads: int) -> list[int]:
    """``leads`` leads' messages, none sent or failed: the test then says what each one did."""
    sign_up_leads(services, leads)
    ids = [m.id for m in rows(services)]
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                status=MessageStatus.SCHEDULED,
                sent_at=None,
                error_code=None,
                status_at=at("2026-01-01T00:00"),
            )
        )
    return ids


def sent(services: Services, message_id: int, *, due: str, left: str) -> None:
    set_rows(
        services,
        [message_id],
        status=MessageStatus.SENT,
        due_at=at(due),
        sent_at=at(left),
        status_at=at(left),
    )


def failed(
    services: Services, message_id: int, *, when: str, code: str | None, state: str = "failed"
) -> None:
    set_rows(
        services, [message_id], status=MessageStatus(state), status_at=at(when), error_code=code
    )


def seed_a_known_day(services: Services) -> None:
    """Sends and failures at known instants around NOW (see each line)."""
    ids = blank_slate(services, 4)
    assert len(ids) >= 10
    sent(services, ids[0], due="2026-03-03T18:00", left="2026-03-03T18:10")  # 10 min late
    sent(services, ids[1], due="2026-03-03T18:19", left="2026-03-03T18:20")  # 1 min late
    sent(services, ids[2], due="2026-03-03T10:05", left="2026-03-03T10:05")  # on time, 03:05 MST
    sent(services, ids[3], due="2026-03-02T18:00", left="2026-03-02T18:59")  # before the 24 h
    # Delivered later, then reported undelivered: it still left at 18:15.
    set_rows(
        services,
        [ids[4]],
        status=MessageStatus.UNDELIVERED,
        due_at=at("2026-03-03T18:15"),
        sent_at=at("2026-03-03T18:15"),
        status_at=at("2026-03-03T18:25"),
        error_code="30003",
    )
    failed(services, ids[5], when="2026-03-03T17:00", code="30003")
    failed(services, ids[6], when="2026-03-03T17:30", code="30005", state="undelivered")
    failed(services, ids[7], when="2026-03-02T20:00", code=None)
    failed(services, ids[8], when="2026-02-28T12:00", code="30005")  # in the week only
    failed(services, ids[9], when="2026-02-20T12:00", code="30003")  # before the week


# --- buckets ------------------------------------------------------------------------------


def test_a_day_is_24_hourly_buckets_labelled_in_the_clinic_zone_ending_with_now() -> None:
    cut = series.buckets(series.LAST_DAY, now=NOW, zone=BOISE)
    assert len(cut.starts) == 24
    assert cut.start == at("2026-03-02T19:00") and cut.end == at("2026-03-03T19:00")
    assert cut.labels[0] == "12:00" and cut.labels[-1] == "11:00"  # Boise, UTC-7
    assert cut.index(NOW) == 23


def test_a_week_is_28_six_hour_buckets_on_local_quarter_days() -> None:
    cut = series.buckets(series.LAST_WEEK, now=NOW, zone=BOISE)
    assert len(cut.starts) == 28
    assert cut.start == at("2026-02-24T19:00") and cut.end == at("2026-03-03T19:00")
    assert cut.labels[:3] == ["Tue 12:00", "Tue 18:00", "Wed 00:00"]
    assert cut.labels[-1] == "Tue 06:00"


def test_the_spring_forward_night_still_has_24_hours_and_names_the_jump() -> None:
    # 2026-03-08: Boise's clocks go from 02:00 MST to 03:00 MDT (09:00 UTC). Noon MDT then.
    now = at("2026-03-08T18:30")
    cut = series.buckets(series.LAST_DAY, now=now, zone=BOISE)
    assert len(cut.starts) == 24
    assert [b - a for a, b in zip(cut.starts, cut.starts[1:], strict=False)] == [
        timedelta(hours=1)
    ] * 23
    assert cut.labels == [
        *[f"{h:02d}:00" for h in range(12, 24)],  # Saturday afternoon and evening, MST
        "00:00",
        "01:00",
        "03:00 MDT",  # 02:00 never happened
        *[f"{h:02d}:00" for h in range(4, 13)],
    ]


def test_the_fall_back_night_labels_the_repeated_hour_with_its_zone() -> None:
    # 2026-11-01: 02:00 MDT becomes 01:00 MST (08:00 UTC), so 01:00 comes twice.
    cut = series.buckets(series.LAST_DAY, now=at("2026-11-01T19:30"), zone=BOISE)
    assert len(cut.starts) == 24
    assert cut.labels.count("01:00") == 1 and "01:00 MST" in cut.labels
    assert cut.labels.index("01:00 MST") == cut.labels.index("01:00") + 1


def test_the_hour_is_sixty_minutes_ending_with_this_one() -> None:
    cut = series.buckets(series.LAST_HOUR, now=NOW, zone=BOISE)
    assert len(cut.starts) == 60
    assert cut.start == at("2026-03-03T17:31") and cut.labels[-1] == "11:30"


# --- series -------------------------------------------------------------------------------


def test_sends_and_lateness_per_hour_over_a_day(services: Services) -> None:
    seed_a_known_day(services)
    with services.read_sessions() as session:
        day = series.sends(session, series.LAST_DAY, now=NOW, zone=BOISE)
    expected = [0] * 24
    expected[15] = 1  # 10:05 UTC is 03:05 in Boise: the 03:00 bucket, 16th from 12:00
    expected[23] = 3  # 18:10, 18:15 (later undelivered), 18:20
    assert day.sends == expected
    assert day.buckets.labels[15] == "03:00"
    # Lateness, nearest rank: p50 of (1, 10, 0 min) is 1 min, p95 is 10 min; none where none left.
    assert day.late_p50[23] == 60 and day.late_p95[23] == 600
    assert day.late_p50[15] == 0 and day.late_p95[15] == 0
    assert [v for i, v in enumerate(day.late_p50) if i not in (15, 23)] == [None] * 22


def test_sends_over_a_week_in_six_hour_buckets(services: Services) -> None:
    seed_a_known_day(services)
    with services.read_sessions() as session:
        week = series.sends(session, series.LAST_WEEK, now=NOW, zone=BOISE)
    expected = [0] * 28
    expected[23] = 1  # 2026-03-02 18:59 UTC: 5 d 23 h 59 min after the start
    expected[26] = 1  # 10:05
    expected[27] = 3
    assert week.sends == expected


def test_failures_per_code_per_bucket_zero_filled(services: Services) -> None:
    seed_a_known_day(services)
    with services.read_sessions() as session:
        day = series.failures(session, series.LAST_DAY, now=NOW, zone=BOISE)
        week = series.failures(session, series.LAST_WEEK, now=NOW, zone=BOISE)
    zeros = [0] * 24
    assert list(day.by_code) == ["30003", "30005", "none"]  # most first, then by name
    assert day.by_code["30003"] == [*zeros[:22], 1, 1]  # 17:00, and 18:25 (undelivered)
    assert day.by_code["30005"] == [*zeros[:22], 1, 0]
    assert day.by_code["none"] == [0, 1, *zeros[:22]]  # 20:00 UTC on the 2nd: 13:00 in Boise
    assert day.total == 4
    assert week.by_code == {
        "30003": [*[0] * 27, 2],  # 17:00 and 18:25 UTC: the last six hours
        "30005": [*[0] * 14, 1, *[0] * 12, 1],  # 2026-02-28 12:00 UTC: 3 d 17 h in
        "none": [*[0] * 24, 1, 0, 0, 0],
    }


def test_nothing_in_the_window_is_every_bucket_zero(services: Services) -> None:
    blank_slate(services, 1)
    with services.read_sessions() as session:
        sends = series.sends(session, series.LAST_WEEK, now=NOW, zone=BOISE)
        fails = series.failures(session, series.LAST_WEEK, now=NOW, zone=BOISE)
    assert sends.sends == [0] * 28 and sends.late_p95 == [None] * 28
    assert fails.by_code == {} and fails.total == 0


def test_a_send_on_the_spring_forward_night_lands_in_the_right_hour(services: Services) -> None:
    ids = blank_slate(services, 1)
    sent(services, ids[0], due="2026-03-08T09:30", left="2026-03-08T09:30")  # 03:30 MDT
    sent(services, ids[1], due="2026-03-08T08:30", left="2026-03-08T08:45")  # 01:45 MST
    with services.read_sessions() as session:
        day = series.sends(session, series.LAST_DAY, now=at("2026-03-08T18:30"), zone=BOISE)
    assert len(day.sends) == 24
    assert day.sends[13:15] == [1, 1]
    assert day.buckets.labels[13:15] == ["01:00", "03:00 MDT"]
    assert day.late_p50[13] == 15 * 60 and day.late_p50[14] == 0


# --- the page -----------------------------------------------------------------------------


def figure(page: str, name: str) -> str:
    found = re.search(rf'<figure class="ops-chart" data-chart="{name}">(.*?)</figure>', page, re.S)
    assert found, f"no {name} chart on the page"
    return found.group(1).strip()


def drawn(page: str, name: str) -> Drawn:
    svg = re.search(r"<svg\b.*?</svg>", figure(page, name), re.S)
    assert svg, f"the {name} chart is not drawn"
    return read_chart(svg.group())


def test_the_page_draws_the_charts_for_a_day_and_for_a_week(
    services: Services, ops_staff: Browser
) -> None:
    seed_a_known_day(services)
    with freeze_time(NOW, tick=True):
        day = ops_staff.get("/admin/ops")
        week = ops_staff.get("/admin/ops?range=7d")
    assert day.status_code == 200 and week.status_code == 200, (day.text, week.text)
    ranges = ((day.text, "24h", 24, "10 min"), (week.text, "7d", 28, "59 min"))
    for page, key, count, latest in ranges:
        assert f'data-range-shown="{key}"' in page
        assert f'<strong aria-current="page" data-range="{key}">' in page
        sends = drawn(page, "sends")
        assert len(sends.values["only"]) == count
        failures = drawn(page, "failures")
        assert set(failures.values) == {"30003", "30005", "none"}
        lateness = drawn(page, "lateness")
        assert set(lateness.values) == {"p50", "p95"}
        assert f"p95 at most {latest}" in lateness.desc  # the peak, in words
        assert 'src="http' not in page and "kozea" not in page
    day_sends = drawn(day.text, "sends")
    assert day_sends.desc == "Sends per hour, the last 24 h: 4 sends in total; at most 3 at 11:00."
    week_failures = drawn(week.text, "failures")
    assert week_failures.desc.startswith("Failures by error code, per 6 h, the last 7 days: 5 ")
    assert 'href="/admin/ops?range=7d#charts"' in day.text
    assert 'href="/admin/ops?range=24h#charts"' in week.text
    assert 'data-url="/admin/ops?range=7d"' in week.text  # the refresh keeps the range
    minutes = drawn(day.text, "minutes")
    assert len(minutes.values["only"]) == 60 and minutes.desc.startswith(
        "Sends per minute, the last hour: 3 sends in total"
    )


def test_an_empty_range_says_so_instead_of_drawing_an_empty_frame(
    services: Services, ops_staff: Browser
) -> None:
    blank_slate(services, 1)
    page = ops_staff.get("/admin/ops?range=7d").text
    for name in ("sends", "lateness", "failures", "minutes"):
        assert "<svg" not in figure(page, name), name
    assert '<p class="chart-empty" role="note">No sends in the last 7 days.</p>' in figure(
        page, "sends"
    )
    assert "No failures in the last 7 days." in figure(page, "failures")
    assert "no lateness to show" in figure(page, "lateness")
    assert "No sends in the last hour." in figure(page, "minutes")


def test_a_hostile_error_code_is_text_in_the_chart(services: Services, ops_staff: Browser) -> None:
    ids = blank_slate(services, 1)
    failed(services, ids[0], when="2026-03-03T17:00", code="<script>x</script>")
    with freeze_time(NOW, tick=True):
        page = ops_staff.get("/admin/ops").text
    chart = figure(page, "failures")
    assert "<script" not in chart and "&lt;script&gt;x&lt;/script&gt;" in chart
    assert "<script>x" not in page
    chart_read = drawn(page, "failures")
    assert set(chart_read.values) == {"<script>x</script>"}
    assert "(<script>x</script> 1)" in chart_read.desc


def test_an_unknown_range_is_a_clear_400(ops_staff: Browser) -> None:
    response = ops_staff.get("/admin/ops?range=forever")
    assert response.status_code == 400
    assert "range: use 24h or 7d, not &#39;forever&#39;" in response.text
