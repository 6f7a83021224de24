"""The results of an A/B test and promoting its winner (issue 15 §3, "done when": an A/B test on
a seeded data set calls the winner the test expects, and refuses to call one below the minimum
sample), through the results function, the sequence page and its promote button."""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import insert, select

from nurture import clock
from nurture.cli import cli
from nurture.config.policy import Experiments, Policy
from nurture.config.settings import get_settings
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Lead,
    LeadEvent,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox import promotions, variants
from nurture.preview import experiment_results, sequence_overview
from nurture.runtime import Services
from nurture.web import create_app
from tests.db.test_admin_pages import Browser, sign_in
from tests.db.test_variants_planning import ab_config_dir, ab_services, nudge_of
from tests.support.factories import sign_up

__all__ = ["ab_config_dir", "ab_services"]

SEQUENCE = "ab-nurture"
STEP = "nudge"
TEMPLATES = {"A": "follow-up", "B": "booking-nudge-1"}
_serial = itertools.count()


def seed_arm(
    services: Services,
    variant: str,
    *,
    reached: int,
    booked: int,
    opted_out: int = 0,
    booked_late: int = 0,
    booked_before: int = 0,
    not_reached: int = 0,
    old_template: int = 0,
    sent_at: datetime | None = None,
) -> None:
    """Leads who were sent the variant's message ``sent_at`` (default 10 days ago), of whom
    ``booked`` booked two days after it, ``booked_late`` six days after it (outside the 5-day
    e-mail window), ``booked_before`` a day before it (not the message's doing), and
    ``opted_out`` unsubscribed a day after it; plus ``not_reached`` leads whose message was
    cancelled or failed and ``old_template`` leads sent the variant under an older template."""
    sent = sent_at or clock.utcnow() - timedelta(days=10)
    assert booked + booked_late + booked_before <= reached and opted_out <= reached
    leads, messages, events, consents = [], [], [], []
    total = reached + not_reached + old_template
    for n in range(total):
        serial = next(_serial)
        lead_id = uuid.uuid4()
        leads.append(
            {"id": lead_id, "first_name": f"Seed{serial}", "email": f"seed{serial}@example.org"}
        )
        reached_row = n < reached
        status = MessageStatus.DELIVERED if n % 2 else MessageStatus.SENT
        if not reached_row and n < reached + not_reached:
            status = MessageStatus.CANCELLED if n % 2 else MessageStatus.FAILED
        template = TEMPLATES[variant] if n < reached + not_reached else "what-to-expect"
        messages.append(
            {
                "lead_id": lead_id,
                "sequence_key": SEQUENCE,
                "step_key": STEP,
                "channel": Channel.EMAIL,
                "purpose": Purpose.MARKETING,
                "template_key": template,
                "variant": variant,
                "due_at": sent,
                "status": status,
                "status_at": sent,
                "sent_at": sent
                if status in (MessageStatus.SENT, MessageStatus.DELIVERED)
                else None,
                "idempotency_key": f"seed:{serial}",
                "created_at": sent,
            }
        )
        booked_at = None
        if n < booked:
            booked_at = sent + timedelta(days=2)
        elif n < booked + booked_late:
            booked_at = sent + timedelta(days=6)
        elif n < booked + booked_late + booked_before:
            booked_at = sent - timedelta(days=1)
        elif n >= reached and n % 3 == 0:
            booked_at = sent + timedelta(days=1)  # booked, but never reached: not counted
        if booked_at is not None:
            events.append(
                {
                    "lead_id": lead_id,
                    "type": "consult_booked",
                    "actor": "seed",
                    "occurred_at": booked_at,
                }
            )
        if reached - opted_out <= n < reached or (n >= reached and n % 3 == 1):
            consents.append(
                {
                    "lead_id": lead_id,
                    "channel": Channel.EMAIL,
                    "purpose": Purpose.MARKETING,
                    "action": ConsentAction.REVOKED,
                    "source": ConsentSource.EMAIL_ONE_CLICK,
                    "occurred_at": sent + timedelta(days=1),
                }
            )
    with services.sessions.begin() as session:
        session.execute(insert(Lead), leads)
        session.execute(insert(Message), messages)
        if events:
            session.execute(insert(LeadEvent), events)
        if consents:
            session.execute(insert(ConsentEvent), consents)


def seed_called_test(services: Services) -> None:
    """B books twice as often as A, 400 leads each: a clear winner."""
    seed_arm(
        services,
        "A",
        reached=400,
        booked=40,
        booked_late=30,
        booked_before=5,
        opted_out=6,
        not_reached=25,
        old_template=20,
    )
    seed_arm(services, "B", reached=400, booked=80, booked_late=10, opted_out=2, not_reached=25)


def seed_small_test(services: Services) -> None:
    """B looks far better, but it has reached only 120 of the 200 leads an arm needs."""
    seed_arm(services, "A", reached=250, booked=20)
    seed_arm(services, "B", reached=120, booked=40, not_reached=100)


def result_of(
    services: Services, policy: Policy | None = None
) -> experiment_results.ExperimentResult:
    sequence = services.catalog.by_key[SEQUENCE]
    with services.sessions() as session:
        [result] = experiment_results.sequence_results(session, sequence, policy or services.policy)
    return result


def test_a_seeded_test_calls_the_winner_the_test_expects(ab_services: Services) -> None:
    seed_called_test(ab_services)
    result = result_of(ab_services)
    counts = {a.variant.name: (a.reached, a.booked, a.opted_out) for a in result.arms}
    # Only sent or delivered rows with the variant's current template are reached; only
    # bookings within 5 days after the message count; opt-outs are e-mail revocations.
    assert counts == {"A": (400, 40, 6), "B": (400, 80, 2)}
    assert result.window == timedelta(days=5)
    assert result.decision.winner == "B"
    assert result.winner is not None and result.winner.template == "booking-nudge-1"
    by_name = {a.variant.name: a for a in result.arms}
    assert by_name["B"].probability_best is not None and by_name["B"].probability_best > 0.999
    for arm in result.arms:
        assert arm.interval is not None and arm.rate is not None
        low, high = arm.interval
        assert low < arm.rate < high
    assert by_name["A"].interval[1] < by_name["B"].interval[1]  # type: ignore[index]


def test_no_winner_is_called_below_the_minimum_sample(ab_services: Services) -> None:
    seed_small_test(ab_services)
    result = result_of(ab_services)
    assert [(a.variant.name, a.reached, a.booked) for a in result.arms] == [
        ("A", 250, 20),
        ("B", 120, 40),
    ]
    assert result.decision.winner is None and result.winner is None
    assert result.decision.reason == "not enough data: variant B has 120 of the 200 leads needed"
    # With a lower minimum (policy.experiments) the same numbers do call B.
    lower = ab_services.policy.model_copy(update={"experiments": Experiments(min_per_arm=100)})
    assert result_of(ab_services, lower).decision.winner == "B"


def test_the_booking_window_is_the_steps_channels_in_the_policy(ab_services: Services) -> None:
    """policy.attribution gives each channel its window (e-mail 5 days by default)."""
    seed_arm(ab_services, "A", reached=10, booked=3, booked_late=2)
    policy = ab_services.policy.model_copy(
        update={
            "attribution": ab_services.policy.attribution.model_copy(
                update={"email": timedelta(days=7)}
            )
        }
    )
    booked = {a.variant.name: a.booked for a in result_of(ab_services, policy).arms}
    assert booked == {"A": 5, "B": 0}  # a 7-day window takes in the day-6 bookings too


@pytest.fixture
def app(ab_services: Services) -> FastAPI:
    return create_app(ab_services)


@pytest.fixture
def marketing(app: FastAPI, ab_services: Services) -> Iterator[Browser]:
    browser = sign_in(app, ab_services, "marketing")
    yield browser
    browser.client.close()


def text_of(page: Any) -> str:
    """The page's words, without markup."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text))).replace(" )", ")")


def arm_row(page: Any, name: str) -> str:
    found = re.search(rf'<tr data-arm="{name}"[^>]*>(.*?)</tr>', page.text, re.S)
    assert found, page.text
    return found.group(1)


PAGE = f"/admin/sequences/{SEQUENCE}"
PROMOTE = f"/admin/sequences/{SEQUENCE}/steps/{STEP}/promote"


def promoted_events(services: Services) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == promotions.PROMOTED))
        )


def test_the_page_shows_the_same_results_and_promotes_the_winner(
    ab_services: Services, marketing: Browser
) -> None:
    seed_called_test(ab_services)
    page = marketing.get(PAGE)
    assert page.status_code == 200
    assert '<td class="reached">400</td>' in arm_row(page, "A")
    assert '<td class="booked">40</td>' in arm_row(page, "A")
    assert '<td class="booked">80</td>' in arm_row(page, "B")
    assert '<td class="opted-out">2</td>' in arm_row(page, "B")
    # Never "100.0 %" or "0.0 %": the page claims no certainty the numbers have not got.
    assert '<td class="p-best">more than 99.9 %</td>' in arm_row(page, "B")
    assert '<td class="p-best">less than 0.1 %</td>' in arm_row(page, "A")
    assert 'class="winner"' in page.text.split('data-arm="B"')[1].split(">")[0]
    result = result_of(ab_services)
    low, high = result.arms[1].interval  # type: ignore[misc]
    assert f"{low * 100:.1f}–{high * 100:.1f} %" in text_of(page)
    assert "Winner: variant B (booking-nudge-1)" in text_of(page)
    # The step lists both variants with their templates and shares.
    assert 'href="/admin/templates/email/follow-up"' in page.text
    assert 'href="/admin/templates/email/booking-nudge-1"' in page.text
    assert text_of(page).count("50 %") >= 2
    # The sample lead (the first preset) is marked with the variant the planner gives it.
    sequence = ab_services.catalog.by_key[SEQUENCE]
    _, sample = sequence_overview.sample_for(None, sequence)
    mine = variants.assign(sample.lead_id(), SEQUENCE, sequence.steps[1])
    assert mine is not None
    assert f'<li data-variant="{mine.name}" class="for-sample">' in page.text
    assert page.text.count('class="for-sample"') == 1

    refused = marketing.post(PROMOTE, {"variant": "A"}, csrf=marketing.csrf(PAGE))
    assert refused.status_code == 409 and "the winner is variant B, not 'A'" in text_of(refused)
    assert promoted_events(ab_services) == []

    done = marketing.post(PROMOTE, {"variant": "B"}, csrf=marketing.csrf(PAGE))
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{PAGE}#experiment-{STEP}"
    [event] = promoted_events(ab_services)
    assert event.actor == marketing.actor
    assert {k: event.details[k] for k in ("sequence", "step", "variant", "template")} == {
        "sequence": SEQUENCE,
        "step": STEP,
        "variant": "B",
        "template": "booking-nudge-1",
    }
    assert event.details["arms"]["B"]["booked"] == 80
    after = marketing.get(PAGE)
    assert "Promoted: variant B (booking-nudge-1) by staff:marketing@clinic.example" in text_of(
        after
    )
    assert PROMOTE not in after.text  # no second button
    again = marketing.post(PROMOTE, {"variant": "B"}, csrf=marketing.csrf(PAGE))
    assert again.status_code == 409 and "already promoted" in text_of(again)
    # The next lead planned gets the winner's template.
    lead_id = sign_up(ab_services, email="next@example.org", phone="+12085550199")
    [row] = nudge_of(ab_services, lead_id)
    assert (row.template_key, row.variant) == ("booking-nudge-1", None)


def test_the_page_says_why_there_is_no_winner_and_promoting_is_refused(
    ab_services: Services, marketing: Browser
) -> None:
    seed_small_test(ab_services)
    page = marketing.get(PAGE)
    assert page.status_code == 200
    assert "not enough data: variant B has 120 of the 200 leads needed" in text_of(page)
    assert PROMOTE not in page.text
    refused = marketing.post(PROMOTE, {"variant": "B"}, csrf=marketing.csrf(PAGE))
    assert refused.status_code == 409
    assert "no winner is called yet (not enough data: variant B has 120" in text_of(refused)
    assert promoted_events(ab_services) == []


def test_promoting_needs_csrf_a_role_that_may_and_a_real_step(
    app: FastAPI, ab_services: Services, marketing: Browser
) -> None:
    seed_called_test(ab_services)
    assert marketing.post(PROMOTE, {"variant": "B"}).status_code == 403  # no CSRF token
    assert marketing.post(PROMOTE, {"variant": "B"}, csrf="forged").status_code == 403
    ops = sign_in(app, ab_services, "ops")
    as_ops = ops.get(PAGE)
    assert as_ops.status_code == 200 and "Winner: variant B" in text_of(as_ops)
    assert PROMOTE not in as_ops.text  # ops sees the result, not the button
    forbidden = ops.post(PROMOTE, {"variant": "B"}, csrf=ops.csrf(PAGE))
    assert forbidden.status_code == 403 and "cannot promote" in text_of(forbidden)
    csrf = marketing.csrf(PAGE)
    wrong_step = marketing.post(
        f"/admin/sequences/{SEQUENCE}/steps/welcome/promote", {"variant": "B"}, csrf=csrf
    )
    assert wrong_step.status_code == 404 and "no A/B-tested step 'welcome'" in text_of(wrong_step)
    assert marketing.post(PROMOTE, {}, csrf=csrf).status_code == 422
    assert promoted_events(ab_services) == []


def test_auto_promote_promotes_a_called_winner_once_as_auto(ab_services: Services) -> None:
    catalog = ab_services.catalog
    auto = ab_services.policy.model_copy(update={"experiments": Experiments(auto_promote=True)})
    seed_small_test(ab_services)
    with ab_services.sessions.begin() as session:
        assert experiment_results.auto_promote(session, catalog, auto) == []  # nothing called
    seed_arm(ab_services, "B", reached=300, booked=60)
    with ab_services.sessions.begin() as session:
        # Called now, but the policy leaves promotion to staff by default.
        assert experiment_results.auto_promote(session, catalog, ab_services.policy) == []
    with ab_services.sessions.begin() as session:
        assert experiment_results.auto_promote(session, catalog, auto) == [(SEQUENCE, STEP, "B")]
    with ab_services.sessions.begin() as session:
        assert experiment_results.auto_promote(session, catalog, auto) == []  # once
    [event] = promoted_events(ab_services)
    assert (event.actor, event.details["variant"]) == ("auto", "B")


def test_the_command_line_prints_the_same_numbers_and_promotes(ab_services: Services) -> None:
    settings = ab_services.settings
    env = {
        "NURTURE_DATABASE_URL": settings.resolved_database_url,
        "NURTURE_CONFIG_DIR": str(settings.config_dir),
        "NURTURE_TEMPLATES_DIR": str(settings.templates_dir),
        "NURTURE_VAR_DIR": str(settings.var_dir),
    }

    def run(*args: str) -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, list(args), env=env)
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    seed_small_test(ab_services)
    code, output = run("sequences", "results", SEQUENCE, "--json")
    assert code == 0, output
    [test] = json.loads(output)
    assert [(a["variant"], a["reached"], a["booked"]) for a in test["arms"]] == [
        ("A", 250, 20),
        ("B", 120, 40),
    ]
    assert (test["winner"], test["reason"]) == (
        None,
        "not enough data: variant B has 120 of the 200 leads needed",
    )
    code, output = run("--as", "tester", "sequences", "promote", SEQUENCE, STEP, "B")
    assert code == 2 and "not promoted: nudge: no winner is called yet" in output
    seed_arm(ab_services, "B", reached=300, booked=60)
    code, output = run("sequences", "results", SEQUENCE)
    assert code == 0 and "winner: B." in output, output
    code, output = run("--as", "tester", "sequences", "promote", SEQUENCE, STEP, "B")
    assert code == 0, output
    assert output == "promoted: ab-nurture / nudge sends booking-nudge-1 (variant B)\n"
    [event] = promoted_events(ab_services)
    assert event.actor == "cli:tester"
    code, output = run("sequences", "results", "consult-nurture")
    assert code == 2 and "no sequence" in output


def test_the_reaper_beat_promotes_automatically_when_the_policy_says_so(
    ab_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring: the beat's reap task runs auto_promote (its own transaction)."""
    from workers import tasks

    auto = ab_services.policy.model_copy(update={"experiments": Experiments(auto_promote=True)})
    seed_called_test(ab_services)
    monkeypatch.setattr(tasks, "services", lambda: ab_services)
    tasks.reap_stale()
    assert promoted_events(ab_services) == []  # the shipped policy: staff promote
    monkeypatch.setattr(tasks, "services", lambda: dataclasses.replace(ab_services, policy=auto))
    tasks.reap_stale()
    [event] = promoted_events(ab_services)
    assert (event.actor, event.details["variant"]) == ("auto", "B")
