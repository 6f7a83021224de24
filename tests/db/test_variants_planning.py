"""A/B variants at planning time (issue 15 §3): the row records the lead's variant and that
variant's template; planning again gives the same; the simulator shows the same; a promoted
winner is what every lead gets from the next planning on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture import clock
from nurture.db.models import Lead, Message, MessageStatus
from nurture.leads.lifecycle import apply_event
from nurture.outbox import planner, promotions, variants
from nurture.preview.simulation import SampleLead, format_timeline, simulate
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from tests.conftest import FIXTURES, SettingsFactory
from tests.support.factories import messages_of, sign_up

SEQUENCE = "ab-nurture"
STEP = "nudge"


@pytest.fixture(scope="session")
def ab_config_dir(basic_config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test configuration with the A/B fixture sequence instead of basic-nurture."""
    config = tmp_path_factory.mktemp("ab-config") / "config"
    shutil.copytree(basic_config_dir, config)
    shutil.rmtree(config / "sequences")
    shutil.copytree(FIXTURES / "experiments" / "sequences", config / "sequences")
    return config


@pytest.fixture
def ab_services(make_settings: SettingsFactory, ab_config_dir: Path) -> Iterator[Services]:
    built = build_services(make_settings(config_dir=ab_config_dir))
    yield built
    built.close()


def nudge_of(services: Services, lead_id: object) -> list[Message]:
    with services.sessions() as session:
        return [m for m in messages_of(session, lead_id) if m.step_key == STEP]  # type: ignore[arg-type]


def expected_variant(services: Services, lead_id: object) -> tuple[str, str]:
    step = services.catalog.step(SEQUENCE, STEP)
    assert step is not None
    variant = variants.assign(lead_id, SEQUENCE, step)  # type: ignore[arg-type]
    assert variant is not None
    return variant.name, variant.template


def test_a_signup_records_its_variant_and_that_variants_template(ab_services: Services) -> None:
    seen = set()
    for n in range(12):
        lead_id = sign_up(ab_services, email=f"lead{n}@example.org", phone=f"+1208555{n:04d}")
        [row] = nudge_of(ab_services, lead_id)
        assert (row.variant, row.template_key) == expected_variant(ab_services, lead_id)
        seen.add(row.variant)
        with ab_services.sessions() as session:
            welcome = [m for m in messages_of(session, lead_id) if m.step_key == "welcome"]
        assert [m.variant for m in welcome] == [None]  # a step without a test records none
    assert seen == {"A", "B"}  # twelve leads: both arms (a 1 in 2048 chance of one only)


def test_planning_again_gives_the_same_variant(ab_services: Services) -> None:
    """Re-entry plans the step anew (a new enrolment, a new row): same lead, same variant."""
    lead_id = sign_up(ab_services)
    [first] = nudge_of(ab_services, lead_id)
    sequence = ab_services.catalog.by_key[SEQUENCE]
    for _ in range(2):
        with ab_services.sessions.begin() as session:
            lead = session.get(Lead, lead_id)
            assert lead is not None
            planner.exit_enrollment(
                session, lead, SEQUENCE, reason="test", now=clock.utcnow(), actor="test"
            )
            again = planner.handle_event(
                session,
                lead,
                LifecycleEvent.SIGNED_UP,
                catalog=ab_services.catalog,
                clinic_zone=ab_services.clinic.zone,
                now=clock.utcnow(),
                actor="test",
            )
            assert [e.sequence_key for e in again] == [sequence.key]
    rows = nudge_of(ab_services, lead_id)
    assert len(rows) == 3
    assert {(m.variant, m.template_key) for m in rows} == {(first.variant, first.template_key)}


def test_a_promoted_winner_is_what_the_next_planning_sends(ab_services: Services) -> None:
    # Find a lead whose own assignment is the loser, so the promotion visibly changes its row.
    sequence = ab_services.catalog.by_key[SEQUENCE]
    step = sequence.steps[1]
    winner = step.variant("B")
    assert winner is not None
    before = sign_up(ab_services)
    with ab_services.sessions.begin() as session:
        promotions.record_promotion(session, sequence, step, winner, actor="test", evidence={})
    planned = []
    for n in range(8):
        lead_id = sign_up(ab_services, email=f"after{n}@example.org", phone=f"+1208556{n:04d}")
        [row] = nudge_of(ab_services, lead_id)
        planned.append((row.template_key, row.variant))
    # Every lead gets B's template; the row records no variant: it is no longer in the test.
    assert set(planned) == {("booking-nudge-1", None)}
    # A row planned before the promotion keeps what it was planned with.
    [old] = nudge_of(ab_services, before)
    assert (old.variant, old.template_key) == expected_variant(ab_services, before)


def test_a_promotion_of_a_variant_the_file_no_longer_has_is_ignored(
    ab_services: Services,
) -> None:
    sequence = ab_services.catalog.by_key[SEQUENCE]
    step = sequence.steps[1]
    stale = step.variants[0].model_copy(update={"template": "what-to-expect"})  # type: ignore[index]
    with ab_services.sessions.begin() as session:
        promotions.record_promotion(session, sequence, step, stale, actor="test", evidence={})
    lead_id = sign_up(ab_services)
    [row] = nudge_of(ab_services, lead_id)
    assert (row.variant, row.template_key) == expected_variant(ab_services, lead_id)


def test_the_simulator_shows_the_variant_the_planner_assigns(ab_services: Services) -> None:
    sequence = ab_services.catalog.by_key[SEQUENCE]
    now = clock.utcnow()
    sample = SampleLead(first_name="Vera", email="vera@example.org", phone="+12085550177")
    entries = simulate(
        sequence,
        sample,
        start=now,
        consult_at=None,
        writer=ab_services.writer,
        policy=ab_services.policy,
    )
    [entry] = [e for e in entries if e.step_key == STEP]
    with ab_services.sessions() as session:  # never committed: closing rolls it back
        lead = sample.to_lead(consult_at=None, now=now)
        session.add(lead)
        enrollment = planner.enroll(
            session, lead, sequence, clinic_zone=ab_services.clinic.zone, now=now, actor="t"
        )
        assert enrollment is not None
        row = session.scalars(
            select(Message).where(Message.lead_id == lead.id, Message.step_key == STEP)
        ).one()
        assert (entry.variant, entry.template) == (row.variant, row.template_key)
    assert entry.headline and entry.skipped is None  # the variant's own template rendered
    timeline = format_timeline(sequence, sample, entries, start=now, consult_at=None)
    assert f"nudge [{entry.variant}: {entry.template}]" in timeline


def test_a_reschedule_plans_the_step_again_with_the_same_variant(ab_services: Services) -> None:
    lead_id = sign_up(ab_services)
    consult = clock.utcnow() + timedelta(days=5)
    for event, at in (
        (LifecycleEvent.CONSULT_BOOKED, consult),
        (LifecycleEvent.CONSULT_RESCHEDULED, consult + timedelta(days=2)),
        (LifecycleEvent.CONSULT_RESCHEDULED, consult + timedelta(days=4)),
    ):
        with ab_services.sessions.begin() as session:
            lead = session.get(Lead, lead_id)
            assert lead is not None
            apply_event(
                session,
                lead,
                event,
                consult_at=at,
                catalog=ab_services.catalog,
                clinic_zone=ab_services.clinic.zone,
                now=clock.utcnow(),
                actor="test",
            )
    with ab_services.sessions() as session:
        rows = [m for m in messages_of(session, lead_id) if m.step_key == "reminder"]
    step = ab_services.catalog.step("ab-reminders", "reminder")
    assert step is not None
    expected = variants.assign(lead_id, "ab-reminders", step)
    assert expected is not None
    assert len({m.due_at for m in rows}) == 3  # one row per consult time
    assert [m.status for m in rows[:2]] == [MessageStatus.CANCELLED] * 2
    assert {(m.variant, m.template_key) for m in rows} == {(expected.name, expected.template)}
