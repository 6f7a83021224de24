"""The ops console at /admin/ops, driven through the real login form, sessions and CSRF tokens,
on PostgreSQL and SQLite: what it shows, and every action it takes (kill switches, retries,
settling `unknown` rows, reconciling with the provider, purging bodies)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import func, select, update

from nurture import clock, ops
from nurture.db.models import AuditEvent, Channel, Lead, Message, MessageStatus, Pause
from nurture.outbox import alerts, dispatch
from nurture.runtime import Services, build_services
from nurture.web import create_app
from nurture.web.admin.ops_pages import human_duration
from tests.conftest import REDIS_URL, SettingsFactory
from tests.db.test_admin_pages import Browser, sign_in
from tests.support.factories import claim_and_send_all, sign_up
from tests.unit.test_charts import Drawn, read_chart

PAGE = "/admin/ops"
QUEUE_TEST_DB = 13  # see test_queue_depths_are_read_from_redis
# What the test knows independently of the code: the three Celery queues, and how kombu's
# Redis transport stores one (a list per priority step: the name, then name + "\x06\x16" + step).
QUEUES = ("dispatch", "email", "sms")
KOMBU_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def ops_staff(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "ops")
    yield browser
    browser.client.close()


# --- helpers ------------------------------------------------------------------------------


def sign_up_leads(services: Services, count: int) -> list[uuid.UUID]:
    return [
        sign_up(services, email=f"lead{i}@example.com", phone=f"+120855501{i:02d}")
        for i in range(count)
    ]


def rows(services: Services, *where: Any) -> list[Message]:
    with services.sessions() as session:
        return list(session.scalars(select(Message).where(*where).order_by(Message.id)))


def row(services: Services, message_id: int) -> Message:
    with services.sessions() as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


def set_rows(services: Services, ids: list[int], **values: Any) -> None:
    with services.sessions.begin() as session:
        session.execute(update(Message).where(Message.id.in_(ids)).values(**values))


def make_unknown(services: Services, message_id: int, *, minutes_ago: int = 10) -> None:
    set_rows(
        services,
        [message_id],
        status=MessageStatus.UNKNOWN,
        status_at=clock.utcnow() - timedelta(minutes=minutes_ago),
        last_error="the worker died mid-send",
    )


def sent_sms(services: Services, **lead: Any) -> Message:
    """One lead signed up and everything due sent: its text, now `sent`."""
    lead_id = sign_up(services, **lead)
    claim_and_send_all(services)
    found = rows(services, Message.lead_id == lead_id, Message.channel == Channel.SMS)
    assert [m.status for m in found] == [MessageStatus.SENT]
    return found[0]


def audit(services: Services, action: str) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def audit_count(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def pauses_in_db(services: Services) -> list[Pause]:
    with services.sessions() as session:
        return list(session.scalars(select(Pause).order_by(Pause.id)))


def claimed_channels(services: Services) -> list[Channel]:
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=1000)
        session.commit()
    return [c.channel for c in claimed]


def act(browser: Browser, path: str, data: dict[str, str]) -> httpx.Response:
    """POST an ops form with a fresh CSRF token from the page."""
    return browser.post(f"{PAGE}/{path}", data, csrf=browser.csrf(PAGE))


def done(response: httpx.Response, notice: str) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{PAGE}?notice={notice}"), location
    return location


def refused(response: httpx.Response, reason: str) -> str:
    """422, the page again, saying why (the domain's messages start with the field's name)."""
    assert response.status_code == 422, response.text
    text = response.text
    assert 'role="alert"' in text and f"Not done: {reason}" in text, text
    return text


def numbers(page: str, attribute: str) -> dict[str, str]:
    return dict(re.findall(rf'data-{attribute}="([^"]+)">([^<]*)<', page))


def minute_chart(page: str) -> Drawn:
    """The sends-per-minute chart (the first figure on the page) as a reader finds it."""
    figure = re.search(r'data-chart="minutes">(.*?)</figure>', page, re.DOTALL)
    assert figure, "the page has no sends-per-minute chart"
    svg = re.search(r"<svg\b.*?</svg>", figure.group(1), re.DOTALL)
    assert svg, "the sends-per-minute chart is not drawn"
    return read_chart(svg.group())


def status_json(browser: Browser) -> dict[str, Any]:
    response = browser.get(f"{PAGE}/status.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload: dict[str, Any] = response.json()
    return payload


# --- who may open it ----------------------------------------------------------------------


def test_ops_and_admin_open_the_page_marketing_may_not(app: FastAPI, services: Services) -> None:
    for role in ("ops", "admin"):
        browser = sign_in(app, services, role)
        page = browser.get(PAGE)
        assert page.status_code == 200, (role, page.text)
        for heading in ("At a glance", "Kill switches", "Retry a failed message", "Purge"):
            assert heading in page.text
        assert browser.get(f"{PAGE}/status.json").status_code == 200
        browser.client.close()
    marketing = sign_in(app, services, "marketing")
    assert marketing.get(PAGE).status_code == 403
    assert marketing.get(f"{PAGE}/status.json").status_code == 403
    before = audit_count(services)
    token = marketing.csrf("/admin/")
    refused_role = marketing.post(f"{PAGE}/pause", {"scope": "all", "reason": "x"}, csrf=token)
    assert refused_role.status_code == 403
    assert pauses_in_db(services) == [] and audit_count(services) == before
    marketing.client.close()


def test_without_a_session_it_sends_you_to_the_login(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as anonymous:
        for url in (PAGE, f"{PAGE}/status.json"):
            response = anonymous.get(url, follow_redirects=False)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/admin/login?next=%2Fadmin%2Fops")


# --- what it shows ------------------------------------------------------------------------


def test_an_unreachable_broker_reads_not_available(make_settings: SettingsFactory) -> None:
    services = build_services(make_settings(broker_url="redis://127.0.0.1:1/0"))
    try:
        browser = sign_in(create_app(services), services, "ops")
        page = browser.get(PAGE)
        assert page.status_code == 200
        assert re.findall(
            r'data-queue="(\w+)"><span class="problem">not available</span>', page.text
        ) == ["dispatch", "email", "sms"]
        assert status_json(browser)["queues"] == {"dispatch": None, "email": None, "sms": None}
        browser.client.close()
    finally:
        services.close()


@pytest.mark.redis
def test_queue_depths_are_read_from_redis(make_settings: SettingsFactory) -> None:
    # The Redis at REDIS_URL, in a database of its own: REDIS_URL's database is emptied
    # (FLUSHDB) and consumed from by other tests and benchmarks that may run at the same time.
    url = urlsplit(REDIS_URL)._replace(path=f"/{QUEUE_TEST_DB}").geturl()
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not answering at {url}: {error}", pytrace=False)
    marker = f"ops-page-test-{uuid.uuid4().hex}"
    pushed = {"sms": 2, "sms\x06\x163": 1, "sms\x06\x169": 1, "email": 1}  # sub-queues count
    before = {q: sum(client.llen(q + s) for s in KOMBU_PRIORITY_SUFFIXES) for q in QUEUES}
    services = build_services(make_settings(broker_url=url))
    try:
        for key, count in pushed.items():
            client.rpush(key, *[marker] * count)
        browser = sign_in(create_app(services), services, "ops")
        depths = numbers(browser.get(PAGE).text, "queue")
        assert depths == {
            "dispatch": str(before["dispatch"]),
            "email": str(before["email"] + 1),
            "sms": str(before["sms"] + 4),
        }
        assert status_json(browser)["queues"] == {q: int(d) for q, d in depths.items()}
        browser.client.close()
    finally:
        for key in pushed:
            client.lrem(key, 0, marker)
        client.close()
        services.close()


def test_the_chart_has_sixty_minutes_and_counts_the_sends(
    services: Services, ops_staff: Browser
) -> None:
    sign_up_leads(services, 2)
    claim_and_send_all(services)
    sent = rows(services, Message.sent_at.is_not(None))
    assert len(sent) >= 2
    page = ops_staff.get(PAGE).text
    chart = minute_chart(page)
    values = [int(v) for v in chart.values["only"]]
    assert len(values) == 60
    assert sum(values) == sum(status_json(ops_staff)["sends_per_minute"]) == len(sent)
    assert values[-1] == len(sent)  # all sent this minute: the rightmost bar
    assert chart.desc == (
        f"Sends per minute, the last hour: {len(sent)} sends in total; "
        f"at most {len(sent)} at 11:00."  # 18:00 UTC, frozen for db tests, in Boise
    )
    assert f'data-sent-last-hour="{len(sent)}"' in page


def test_the_page_and_status_json_show_the_same_numbers(
    services: Services, ops_staff: Browser
) -> None:
    leads = sign_up_leads(services, 3)
    claim_and_send_all(services)
    texts = rows(services, Message.channel == Channel.SMS)
    set_rows(services, [texts[0].id], status=MessageStatus.FAILED, error_code="30003")
    set_rows(services, [texts[1].id], status=MessageStatus.UNDELIVERED, error_code="30003")
    make_unknown(services, texts[2].id)
    later = rows(services, Message.status == MessageStatus.SCHEDULED)
    assert later
    set_rows(services, [later[0].id], due_at=clock.utcnow() - timedelta(minutes=3))
    with services.sessions.begin() as session:
        ops.record_heartbeat(
            session, hostname="worker-a.local", pid=4242, queues="email,sms", now=clock.utcnow()
        )

    page = ops_staff.get(PAGE).text
    snapshot = status_json(ops_staff)

    counts = numbers(page, "count")
    assert counts == {
        f"{state}-{channel}": str(n)
        for state, by_channel in snapshot["counts"].items()
        for channel, n in by_channel.items()
    }
    # Three leads: each text and welcome left; the texts then failed, bounced, went unknown;
    # the three follow-ups wait.
    nonzero = {"scheduled-email": "3", "sent-email": "3", "failed-sms": "1"}
    nonzero |= {"undelivered-sms": "1", "unknown-sms": "1"}
    assert {k: v for k, v in counts.items() if v != "0"} == nonzero
    assert len(counts) == 20  # ten states, two channels: every cell is shown
    assert (
        numbers(page, "failures")
        == {"30003": "2"}
        == {k: str(v) for k, v in snapshot["failures_by_code"].items()}
    )
    assert "Retry all with this code" in page
    assert 'data-due-now="1"' in page and snapshot["lateness"]["due_now"] == 1
    assert "3 min" in page  # lateness, humanised
    assert 'data-held="0"' in page and snapshot["held_by_pause"] == 0  # no pause: none held
    assert [u["id"] for u in snapshot["unknown"]] == [texts[2].id]
    assert re.findall(r'data-unknown="(\d+)"', page) == [str(texts[2].id)]
    assert f'href="/admin/leads/{leads[2]}">{texts[2].id}</a>' in page
    assert "the worker died mid-send" in page
    assert snapshot["workers"][0]["hostname"] == "worker-a.local"
    assert "worker-a.local" in page and "4242" in page and 'data-workers="0"' not in page
    (line,) = snapshot["sequences"]
    # 3 enrolled; 3 follow-ups pending; 6 left in the last day (3 texts, 3 welcomes: a text
    # that failed later still left); 2 failed (the failed and the undelivered text).
    expected = {"active_enrollments": 3, "pending_rows": 3, "sent_24h": 6, "failed_24h": 2}
    assert line == {"key": "basic-nurture", "name": "Basic nurture (test fixture)", **expected}
    cells = re.search(r'data-sequence="basic-nurture">(.*?)</tr>', page, re.DOTALL)
    assert cells
    assert re.findall(r"<td>(?:<span[^>]*>)?(\d+)", cells.group(1)) == ["3", "3", "6", "2"]
    assert isinstance(snapshot["at"], str) and snapshot["at"].startswith("2026-03-03T18:")


def test_no_worker_is_shown_as_a_problem(ops_staff: Browser) -> None:
    page = ops_staff.get(PAGE).text
    assert '<p class="problem" data-workers="0"><strong>none</strong>' in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0 s"), (42.4, "42 s"), (89, "89 s"), (180, "3 min"), (7200, "2 h")],
)
def test_durations_read_the_way_people_say_them(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text
    assert human_duration(3 * 86400) == "3 d"


# --- kill switches ------------------------------------------------------------------------


@pytest.mark.parametrize("overdue", ["skip", "send"])
def test_a_channel_pause_holds_texts_until_it_is_lifted(
    services: Services, ops_staff: Browser, overdue: str
) -> None:
    lead_id = sign_up(services)
    form = {"pause_form": "scoped", "scope": "channel", "channel": "sms", "reason": "carrier"}
    location = done(act(ops_staff, "pause", form), "paused")
    (pause,) = pauses_in_db(services)
    assert (pause.scope.value, pause.value, pause.reason) == ("channel", "sms", "carrier")
    assert pause.created_by == ops_staff.actor
    (started,) = audit(services, "pause.started")
    assert started.actor == ops_staff.actor

    page = ops_staff.get(location).text
    assert "Paused." in page and f'data-pause="{pause.id}"' in page and "Sending is paused" in page
    assert 'name="overdue" value="send" required' in page
    assert 'name="overdue" value="skip" required' in page
    assert "checked" not in page.split(f'data-pause="{pause.id}"')[1].split("</tr>")[0]

    assert Channel.SMS not in claimed_channels(services)  # e-mail goes, texts wait
    text_id = rows(services, Message.lead_id == lead_id, Message.channel == Channel.SMS)[0].id
    assert row(services, text_id).status is MessageStatus.SCHEDULED
    assert numbers(ops_staff.get(PAGE).text, "held") == {"1": "1"}

    resumed = act(ops_staff, "resume", {"pause_id": str(pause.id), "overdue": overdue})
    (ended,) = audit(services, "pause.ended")
    assert ended.actor == ops_staff.actor and ended.details["overdue"] == overdue
    assert pauses_in_db(services)[0].ended_by == ops_staff.actor
    text = row(services, text_id)
    if overdue == "skip":
        assert done(resumed, "resumed-pause").endswith("&count=1")
        assert text.status is MessageStatus.SKIPPED
        assert text.last_error == "paused past due"
        assert claimed_channels(services) == []
        assert "1 overdue message(s) skipped." in ops_staff.get(resumed.headers["location"]).text
    else:
        assert done(resumed, "resumed-pause") == f"{PAGE}?notice=resumed-pause"
        assert text.status is MessageStatus.SCHEDULED
        assert claimed_channels(services) == [Channel.SMS]
    assert "No pause is active." in ops_staff.get(PAGE).text


def test_pause_everything_stops_every_channel(services: Services, ops_staff: Browser) -> None:
    sign_up(services)
    form = {"pause_form": "everything", "scope": "all", "reason": "provider outage"}
    done(act(ops_staff, "pause", form), "paused")
    (pause,) = pauses_in_db(services)
    assert pause.scope.value == "all" and pause.value is None
    assert claimed_channels(services) == []


def test_a_pause_shows_on_every_admin_page_and_everything_is_not_offered_twice(
    app: FastAPI, services: Services, ops_staff: Browser
) -> None:
    marketing = sign_in(app, services, "marketing")
    try:
        before = ops_staff.client.get("/admin/ops").text
        assert "data-paused=" not in before
        assert "Pause everything</button>" in before
        form = {"pause_form": "everything", "scope": "all", "reason": "carrier outage"}
        done(act(ops_staff, "pause", form), "paused")
        for browser, path in [(ops_staff, "/admin/leads"), (marketing, "/admin/templates")]:
            page = browser.client.get(path)
            assert page.status_code == 200
            banner = re.search(r'<div class="paused-banner"[^>]*>(.*?)</div>', page.text, re.S)
            assert banner, path
            assert "everything (carrier outage)" in banner.group(1)
        assert "Resume under Kill switches" in ops_staff.client.get("/admin/leads").text
        assert "Ask ops to resume" in marketing.client.get("/admin/templates").text
        after = ops_staff.client.get("/admin/ops").text
        assert "Pause everything</button>" not in after
        assert "Everything is paused already" in after
    finally:
        marketing.client.close()


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"scope": "all", "reason": "   "}, "reason"),
        ({"scope": "channel", "channel": "sms"}, "reason"),
        ({"scope": "", "reason": "because"}, "scope"),
        ({"scope": "channel", "channel": "fax", "reason": "because"}, "channel"),
        ({"scope": "sequence", "sequence": "nope", "reason": "because"}, "sequence"),
        ({"scope": "all", "reason": "x" * 501}, "reason"),
    ],
)
def test_a_pause_needs_a_reason_and_a_real_target(
    services: Services, ops_staff: Browser, form: dict[str, str], field: str
) -> None:
    before = audit_count(services)
    page = refused(act(ops_staff, "pause", {"pause_form": "scoped", **form}), f"{field}:")
    assert pauses_in_db(services) == [] and audit_count(services) == before
    if form.get("reason", "").strip() and len(form["reason"]) <= 500:
        assert f'value="{form["reason"]}"' in page  # what was typed is kept


def test_resuming_needs_a_choice_for_the_overdue_rows(
    services: Services, ops_staff: Browser
) -> None:
    done(act(ops_staff, "pause", {"scope": "channel", "channel": "sms", "reason": "x"}), "paused")
    (pause,) = pauses_in_db(services)
    before = audit_count(services)
    refused(act(ops_staff, "resume", {"pause_id": str(pause.id)}), "overdue:")
    refused(act(ops_staff, "resume", {"pause_id": str(pause.id), "overdue": "later"}), "overdue:")
    refused(act(ops_staff, "resume", {"pause_id": "999", "overdue": "send"}), "no active pause 999")
    refused(act(ops_staff, "resume", {"pause_id": "abc", "overdue": "send"}), "pause_id:")
    assert pauses_in_db(services)[0].ended_at is None and audit_count(services) == before


# --- failed rows --------------------------------------------------------------------------


def test_retry_by_id_and_by_error_code(services: Services, ops_staff: Browser) -> None:
    sign_up_leads(services, 3)
    claim_and_send_all(services)
    texts = [m.id for m in rows(services, Message.channel == Channel.SMS)]
    set_rows(services, texts[:2], status=MessageStatus.FAILED, error_code="30003")
    set_rows(services, texts[2:], status=MessageStatus.UNDELIVERED, error_code="30005")

    before = audit_count(services)
    refused(act(ops_staff, "retry", {"message_id": "12x"}), "message_id:")
    refused(act(ops_staff, "retry", {"message_id": "9" * 20}), "message_id:")
    sent_email = rows(services, Message.status == MessageStatus.SENT)[0].id
    refused(act(ops_staff, "retry", {"message_id": str(sent_email)}), "message_id:")
    refused(act(ops_staff, "retry", {"error_code": "99999"}), "error_code:")
    assert audit_count(services) == before  # a refusal leaves no trace

    location = done(act(ops_staff, "retry", {"message_id": str(texts[2])}), "retried")
    assert location.endswith("&count=1")
    retried = row(services, texts[2])
    assert retried.status is MessageStatus.SCHEDULED
    assert retried.last_error == "retried by ops"
    assert "1 message(s) back on the schedule" in ops_staff.get(location).text
    assert [row(services, i).status for i in texts[:2]] == [MessageStatus.FAILED] * 2

    page = ops_staff.get(PAGE).text
    assert numbers(page, "failures") == {"30003": "2"}
    assert done(act(ops_staff, "retry", {"error_code": "30003"}), "retried").endswith("&count=2")
    assert [row(services, i).status for i in texts] == [MessageStatus.SCHEDULED] * 3
    events = audit(services, "ops.retried")
    assert [e.details for e in events] == [
        {"ids": [texts[2]], "error_code": None, "rows": 1},
        {"ids": None, "error_code": "30003", "rows": 2},
    ]
    assert {e.actor for e in events} == {ops_staff.actor}


def test_each_failed_row_has_its_own_retry_button(services: Services, ops_staff: Browser) -> None:
    sign_up_leads(services, 3)
    claim_and_send_all(services)
    texts = [m.id for m in rows(services, Message.channel == Channel.SMS)]
    set_rows(services, texts[:2], status=MessageStatus.FAILED, error_code=None)
    page = ops_staff.get(PAGE).text
    listed = re.findall(r'<tr data-failed="(\d+)">', page)
    assert sorted(int(i) for i in listed) == sorted(texts[:2])
    # No code recorded: the codes table cannot retry them, the row's own button can.
    assert "retry these one by one below" in page
    form = re.search(
        rf'<tr data-failed="{texts[0]}">.*?<form method="post" action="/admin/ops/retry"'
        r'.*?name="message_id" value="(\d+)"',
        page,
        re.S,
    )
    assert form and form.group(1) == str(texts[0])
    done(act(ops_staff, "retry", {"message_id": form.group(1)}), "retried")
    assert row(services, texts[0]).status is MessageStatus.SCHEDULED
    after = ops_staff.get(PAGE).text
    assert re.findall(r'<tr data-failed="(\d+)">', after) == [str(texts[1])]


# --- unknown rows -------------------------------------------------------------------------


def test_settling_as_sent_needs_the_provider_id(services: Services, ops_staff: Browser) -> None:
    text = sent_sms(services)
    make_unknown(services, text.id)
    page = ops_staff.get(PAGE).text
    assert f'data-unknown="{text.id}"' in page and "Settle as sent" in page

    before = audit_count(services)
    refused(act(ops_staff, "settle", {"message_id": str(text.id)}), "provider_id:")
    blank = {"message_id": str(text.id), "provider_id": "  "}
    refused(act(ops_staff, "settle", blank), "provider_id:")
    assert row(services, text.id).status is MessageStatus.UNKNOWN
    assert audit_count(services) == before

    form = {"message_id": str(text.id), "provider_id": "SM0123456789abcdef"}
    done(act(ops_staff, "settle", form), "settled")
    settled = row(services, text.id)
    assert settled.status is MessageStatus.SENT and settled.provider_id == "SM0123456789abcdef"
    (event,) = audit(services, "ops.settled_sent")
    assert event.actor == ops_staff.actor and event.message_id == text.id
    # Settled rows are no longer unknown: settling again is refused.
    refused(act(ops_staff, "settle", form), f"message {text.id} is not unknown")
    assert f'data-unknown="{text.id}"' not in ops_staff.get(PAGE).text


def test_resending_needs_the_duplicate_confirmation(services: Services, ops_staff: Browser) -> None:
    text = sent_sms(services)
    make_unknown(services, text.id)
    page = ops_staff.get(PAGE).text
    assert "I understand the person may receive it twice" in page
    assert re.search(r'type="checkbox" name="confirm" value="yes" required', page)

    before = audit_count(services)
    refused(act(ops_staff, "resend", {"message_id": str(text.id)}), "resending may duplicate")
    unconfirmed = {"message_id": str(text.id), "confirm": "no"}
    refused(act(ops_staff, "resend", unconfirmed), "resending may duplicate")
    assert row(services, text.id).status is MessageStatus.UNKNOWN
    assert audit_count(services) == before

    done(act(ops_staff, "resend", {"message_id": str(text.id), "confirm": "yes"}), "retried")
    resent = row(services, text.id)
    assert resent.status is MessageStatus.SCHEDULED
    (event,) = audit(services, "ops.resent")
    assert event.actor == ops_staff.actor and event.message_id == text.id


def test_reconcile_settles_a_text_the_outbox_has(services: Services, ops_staff: Browser) -> None:
    text = sent_sms(services)
    lost = sent_sms(services, email="bo@example.com", phone="+12085550145")
    outbox = services.settings.resolved_outbox_dir / "sms"
    assert list(outbox.glob(f"*-{text.id}.txt"))  # the send wrote its file before the "crash"
    for path in outbox.glob(f"*-{lost.id}.txt"):
        path.unlink()  # this one never got written
    make_unknown(services, text.id)
    make_unknown(services, lost.id)
    make_unknown(services, rows(services, Message.channel == Channel.EMAIL)[0].id)
    fresh = sent_sms(services, email="cy@example.com", phone="+12085550146")
    make_unknown(services, fresh.id, minutes_ago=0)  # too recent to ask about yet

    location = done(act(ops_staff, "reconcile", {}), "settled")
    assert location.endswith("&count=2")
    settled = row(services, text.id)
    assert settled.status is MessageStatus.SENT
    assert settled.provider_id is not None and settled.provider_id.startswith("outbox-")
    (event,) = audit(services, "ops.reconciled")
    assert event.message_id == text.id
    assert row(services, lost.id).status is MessageStatus.SCHEDULED  # it never left: again
    (again,) = audit(services, "ops.reconciled_not_sent")
    assert again.message_id == lost.id
    assert row(services, fresh.id).status is MessageStatus.UNKNOWN
    assert len(rows(services, Message.status == MessageStatus.UNKNOWN)) == 2  # + the e-mail
    assert "2 unknown text(s) settled" in ops_staff.get(location).text


# --- purge --------------------------------------------------------------------------------


def test_purge_deletes_old_bodies_and_keeps_the_rows(
    services: Services, ops_staff: Browser
) -> None:
    old = sent_sms(services)
    recent = sent_sms(services, email="bo@example.com", phone="+12085550145")
    set_rows(services, [old.id], created_at=clock.utcnow() - timedelta(days=100))
    assert row(services, old.id).body and row(services, recent.id).body
    page = ops_staff.get(PAGE).text
    assert services.settings.body_retention_days == 90
    assert 'name="days" type="number" min="1" max="36500" step="1" required value="90"' in page

    before = audit_count(services)
    refused(act(ops_staff, "purge", {"days": "90"}), "confirm:")
    refused(act(ops_staff, "purge", {"days": "0", "confirm": "yes"}), "days:")
    refused(act(ops_staff, "purge", {"days": "ninety", "confirm": "yes"}), "days:")
    assert row(services, old.id).body and audit_count(services) == before

    location = done(act(ops_staff, "purge", {"days": "90", "confirm": "yes"}), "purged")
    assert location.endswith("&count=1")
    purged = row(services, old.id)
    assert purged.body is None and purged.subject is None
    assert purged.status is MessageStatus.SENT and purged.sent_at is not None  # the row stays
    assert row(services, recent.id).body  # younger than 90 days: kept
    (event,) = audit(services, "ops.purged_bodies")
    assert event.actor == ops_staff.actor
    assert event.details == {"older_than_days": 90, "rows": 1}
    assert "Old message bodies deleted." in ops_staff.get(location).text


# --- CSRF ---------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    services: Services, ops_staff: Browser
) -> None:
    text = sent_sms(services)
    make_unknown(services, text.id)
    with services.sessions.begin() as session:
        pause = ops.start_pause(
            session,
            "channel",
            "email",
            reason="set up by the test",
            actor="test",
            now=clock.utcnow(),
            catalog=services.catalog,
        )
        pause_id = pause.id
    before = audit_count(services)
    posts = {
        "pause": {"scope": "all", "reason": "forged"},
        "resume": {"pause_id": str(pause_id), "overdue": "skip"},
        "retry": {"message_id": str(text.id)},
        "settle": {"message_id": str(text.id), "provider_id": "SMforged"},
        "resend": {"message_id": str(text.id), "confirm": "yes"},
        "reconcile": {},
        "purge": {"days": "1", "confirm": "yes"},
    }
    for path, form in posts.items():
        for token in (None, "forged"):
            response = ops_staff.post(f"{PAGE}/{path}", form, csrf=token)
            assert response.status_code == 403, (path, token, response.status_code)
    assert audit_count(services) == before
    assert row(services, text.id).status is MessageStatus.UNKNOWN
    assert [p.ended_at for p in pauses_in_db(services)] == [None]


def test_the_reconciler_asks_about_a_page_by_the_number_it_went_to(services: Services) -> None:
    """An `unknown` page to the on-call phone is looked up by that number, not the lead's."""
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        page = alerts.page_on_call(
            session,
            session.get_one(Lead, lead_id),
            received="now",
            clinic=services.clinic,
            public_url="https://nurture.test",
            now=clock.utcnow(),
            actor="test",
        )
        page_id = page.id
    set_rows(services, [page_id], body="KI Idaho on-call page")
    make_unknown(services, page_id)
    asked = {
        u.id: u.to
        for u in ops.unknown_texts(
            services.engine, older_than=timedelta(minutes=2), now=clock.utcnow()
        )
    }
    assert asked[page_id] == services.clinic.on_call_phone != "+12085550123"
