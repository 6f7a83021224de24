"""The funnel's numbers on a data set whose true numbers are worked out by hand
(tests/support/funnel_seed.py): last touch, windows across a DST change, clicks counted by
lead, opt-outs within the window, failures of attempted, cohorts by the clinic's ISO week."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nurture.db.models import Channel, LeadStage, MessageStatus
from nurture.funnel import attribution, cohorts, numbers, report, stages
from nurture.funnel.filters import FilterError, Filters, parse_filters
from tests.support import funnel_seed

BOISE = ZoneInfo("America/Boise")
WINDOWS = {Channel.EMAIL: timedelta(days=5), Channel.SMS: timedelta(days=1)}


def _computed() -> report.Report:
    facts, leads = funnel_seed.facts()
    return report.compute(facts, leads, Filters(), windows=WINDOWS, zone=BOISE)


@pytest.mark.parametrize("view", numbers.VIEWS, ids=lambda view: view.name)
def test_every_view_gives_the_hand_worked_numbers(view: numbers.View) -> None:
    assert _computed().as_dict()["views"][view.name] == funnel_seed.expected_dicts(view)


def test_cohorts_by_the_clinics_iso_week() -> None:
    # L3 signed up Sunday 22:00 in Boise, Monday in UTC: the clinic's week 9 counts them.
    shown = _computed().as_dict()["cohorts"]
    assert shown == funnel_seed.cohort_dicts(funnel_seed.EXPECTED_COHORTS)


def test_a_window_across_the_dst_change_is_elapsed_time() -> None:
    sent = datetime(2026, 3, 6, 17, tzinfo=UTC)  # Friday 10:00 MST
    lead = uuid.uuid4()
    touch = attribution.Touch(1, lead, Channel.EMAIL, sent)
    inside = datetime(2026, 3, 11, 16, 30, tzinfo=UTC)  # Wednesday 10:30 MDT: 119.5 h later
    outside = datetime(2026, 3, 11, 17, 30, tzinfo=UTC)  # 120.5 h later
    assert inside.astimezone(BOISE).day - sent.astimezone(BOISE).day == 5
    credited = attribution.credit([touch], [(lead, inside), (lead, outside)], WINDOWS)
    assert [(c.booked_at, c.after) for c in credited] == [(inside, timedelta(hours=119.5))]


def test_the_latest_message_takes_the_credit_or_nobody_does() -> None:
    lead = uuid.uuid4()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    email = attribution.Touch(1, lead, Channel.EMAIL, start)
    text = attribution.Touch(2, lead, Channel.SMS, start + timedelta(days=1))
    booked = start + timedelta(days=2, hours=1)  # 25 h after the text, 49 h after the e-mail
    assert attribution.credit([email, text], [(lead, booked)], WINDOWS) == []
    earlier = start + timedelta(days=1, hours=2)
    assert [
        c.message_id for c in attribution.credit([text, email], [(lead, earlier)], WINDOWS)
    ] == [2]
    assert attribution.credit([text], [(lead, start)], WINDOWS) == []  # booked before any message


def test_since_bounds_every_number() -> None:
    facts, leads = funnel_seed.facts()
    since = datetime(2026, 3, 2, tzinfo=BOISE)
    kept = numbers.Facts(
        messages=[
            m
            for m in facts.messages
            if (m.sent_at or funnel_seed.MESSAGES[_name(m.message_id)].when) >= since
        ],
        bookings=[(lead, at) for lead, at in facts.bookings if at >= since],
        clicks=[
            c for c, (_, at) in zip(facts.clicks, funnel_seed.CLICKS, strict=True) if at >= since
        ],
        revocations=[r for r in facts.revocations if r.at >= since],
    )
    built = report.compute(
        kept,
        [lead for lead in leads if lead.signed_up_at >= since],
        Filters(since=since),
        windows=WINDOWS,
        zone=BOISE,
    )
    shown = built.as_dict()
    channel = next(view for view in numbers.VIEWS if view.name == "channel")
    assert shown["views"]["channel"] == [
        {
            **dict(zip(channel.columns, key, strict=True)),
            **dict(zip(numbers.NUMBERS, values, strict=True)),
        }
        for key, values in funnel_seed.EXPECTED_SINCE_CHANNEL
    ]
    assert shown["cohorts"] == funnel_seed.cohort_dicts(funnel_seed.EXPECTED_SINCE_COHORTS)
    assert shown["since"] == "2026-03-02"


def _name(message_id: int) -> str:
    return list(funnel_seed.MESSAGES)[message_id - 9001]


def test_stages_from_events_and_lost_from_the_stage() -> None:
    assert stages.furthest(LeadStage.SIGNED_UP, {"consult_booked"}) is stages.Stage.BOOKED
    # A cancelled consult sends the stage back; the booking still happened.
    assert stages.furthest(LeadStage.SIGNED_UP, {"consult_booked", "consult_cancelled"}) == 1
    assert stages.furthest(LeadStage.PATIENT, set()) is stages.Stage.PATIENT  # staff set it
    assert stages.furthest(LeadStage.LOST, {"consult_completed"}) is stages.Stage.CONSULTED
    assert stages.is_lost(LeadStage.LOST) and not stages.is_lost(LeadStage.BOOKED)


def test_the_csv_is_the_table_with_cells_no_spreadsheet_runs() -> None:
    facts, leads = funnel_seed.facts()
    hostile = [
        numbers.MessageFact(**{**vars(m), "utm_source": '=HYPERLINK("x")'})
        if m.utm_source == "google"
        else m
        for m in facts.messages
    ]
    built = report.compute(
        numbers.Facts(hostile, facts.bookings, facts.clicks, facts.revocations),
        leads,
        Filters(),
        windows=WINDOWS,
        zone=BOISE,
    )
    rows = list(report.csv_rows(built, "source"))
    assert rows[0][:3] == ["Source", "Campaign", "Reached"]
    # "=" sorts before "f": the hostile source is the first row.
    assert rows[1][0] == '\'=HYPERLINK("x")'
    assert rows[1][2:] == [2, 1, 50.0, 119.5, 1, 0, 0.0, 4, 1, 25.0]
    assert list(report.csv_rows(built, "sequence"))[2][4] == ""  # no median: an empty cell


def test_cohort_week_starts_on_the_clinics_monday() -> None:
    sunday_night = datetime(2026, 3, 9, 5, tzinfo=UTC)  # Sunday 23:00 MDT
    assert cohorts.week_of(sunday_night, BOISE) == ("2026-W10", datetime(2026, 3, 2).date())


def test_filters_say_what_to_fix() -> None:
    with pytest.raises(FilterError, match=r"since: '2026-13-01' is not a date; write YYYY-MM-DD"):
        parse_filters("2026-13-01", None, zone=BOISE, sequences={"a"})
    with pytest.raises(FilterError, match=r"sequence: no sequence 'b'; use one of a"):
        parse_filters(None, "b", zone=BOISE, sequences={"a"})
    parsed = parse_filters(" 2026-03-08 ", "a", zone=BOISE, sequences={"a"})
    assert parsed.since == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert parsed.sequence == "a"
    assert parse_filters("", "", zone=BOISE, sequences=set()) == Filters()


def test_with_one_sequence_asked_for_last_touch_still_sees_the_others() -> None:
    lead = uuid.uuid4()
    start = datetime(2026, 3, 2, 16, tzinfo=UTC)

    def message(
        number: int, sequence: str, channel: Channel, sent: datetime
    ) -> numbers.MessageFact:
        return numbers.MessageFact(
            number,
            lead,
            sequence,
            1,
            "step",
            "t",
            1,
            channel,
            None,
            MessageStatus.DELIVERED,
            sent,
            None,
            None,
        )

    facts = numbers.Facts(
        messages=[
            message(1, "a", Channel.EMAIL, start),
            message(2, "b", Channel.SMS, start + timedelta(hours=1)),
        ],
        bookings=[(lead, start + timedelta(hours=30))],  # 29 h after b's text: outside its day
        clicks=[],
        revocations=[],
    )
    built = report.compute(facts, [], Filters(sequence="a"), windows=WINDOWS, zone=BOISE)
    [row] = built.as_dict()["views"]["sequence"]
    assert (row["sequence"], row["reached"], row["booked"]) == ("a", 1, 0)
