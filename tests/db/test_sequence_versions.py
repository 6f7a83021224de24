"""Sequences versioned in the database (issue 15 §1): the files seed them, a publish reaches the
next enrolment without a restart, enrolments keep their version unless moved, and a move never
sends a message twice, never sends one late, and cancels what a removed step had planned."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import clock
from nurture.config.yamlconf import ConfigError
from nurture.db.models import (
    AuditEvent,
    Enrollment,
    Lead,
    MessageStatus,
    TemplateState,
)
from nurture.db.versioning import VersionStateError
from nurture.leads.lifecycle import apply_event
from nurture.outbox import dispatch, gates, states, version_moves
from nurture.outbox.version_moves import ChangeKind
from nurture.program import sequence_store
from nurture.program.sequences import LifecycleEvent, Sequence
from nurture.runtime import Services
from tests.support.factories import messages_of, sign_up

KEY = "basic-nurture"
AUTHOR = "m@clinic.example"
FOLLOW_UP_DUE = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)  # sign-up (frozen 18:00 UTC) + 2d


@pytest.fixture(autouse=True)
def exact_clock() -> Iterator[None]:
    """The suite's Tuesday 11:00 in Boise, standing still: due times are compared exactly."""
    with freeze_time("2026-03-03 18:00:00"):
        yield


def sync(services: Services, *, force: bool = False) -> list[sequence_store.SyncLine]:
    with services.sessions.begin() as session:
        return sequence_store.sync(
            session,
            services.settings.config_dir / "sequences",
            templates=services.templates.available(),
            force=force,
            now=clock.utcnow(),
        )


def live_data(services: Services) -> dict[str, Any]:
    with services.sessions() as session:
        row = sequence_store.published(session, KEY)
        assert row is not None
        data: dict[str, Any] = yaml.safe_load(row.source)
        return data


def save(session: Session, data: dict[str, Any]) -> int:
    """Save ``data`` as a draft, as the studio does; its version number."""
    draft = sequence_store.save_draft(
        session, KEY, sequence_store.to_source(data), author=AUTHOR, now=clock.utcnow()
    )
    return draft.version


def publish(session: Session, services: Services, version: int, **options: Any) -> int:
    """Publish ``version`` as the studio does; the live version's number (a copy's, for an
    older one)."""
    live = sequence_store.publish(
        session,
        KEY,
        version,
        templates=services.templates.available(),
        author=AUTHOR,
        now=clock.utcnow(),
        **options,
    )
    return live.version


def publish_data(services: Services, data: dict[str, Any], **options: Any) -> int:
    """Save ``data`` as a draft and publish it; the new version's number."""
    with services.sessions.begin() as session:
        return publish(session, services, save(session, data), **options)


def with_steps(data: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
    return {**data, "steps": [*data["steps"], *steps]}


NEW_STEP = {
    "key": "day-one-note",
    "channel": "email",
    "purpose": "marketing",
    "template": "booking-nudge-1",
    "offset": "1d",
    "at": "10:00",
}


def step_keys(
    services: Services, lead_id: uuid.UUID, *, status: MessageStatus | None = None
) -> list[str]:
    with services.sessions() as session:
        return [
            m.step_key
            for m in messages_of(session, lead_id)
            if status is None or m.status is status
        ]


def sequence_of(services: Services, version: int) -> Sequence:
    with services.sessions() as session:
        row = sequence_store.get_version(session, KEY, version)
        assert row is not None
        return sequence_store.parse(row.source, KEY, version, templates=None)


# --- the files seed the database ---------------------------------------------------------


def test_sync_imports_each_file_under_its_own_version_number_once(services: Services) -> None:
    assert [str(line) for line in sync(services)] == [f"{KEY}: imported version 1 and published it"]
    assert [str(line) for line in sync(services)] == [f"{KEY}: unchanged"]
    assert services.catalog.by_key[KEY].version == 1


def test_a_changed_file_waits_as_a_draft_behind_a_studio_publish_unless_forced(
    services: Services, tmp_path: Path, make_settings: Any
) -> None:
    config = tmp_path / "config"
    import shutil

    shutil.copytree(services.settings.config_dir, config)
    sync(services)
    studio_version = publish_data(services, with_steps(live_data(services), NEW_STEP))
    path = config / "sequences" / f"{KEY}.yaml"
    path.write_text(path.read_text().replace("name: Basic nurture", "name: Basic nurture (edited)"))
    from nurture.runtime import build_services

    edited = build_services(make_settings(config_dir=config))
    try:
        [line] = sync(edited)
        assert "as a draft" in line.outcome and f"version {studio_version}" in line.outcome
        assert edited.catalog.by_key[KEY].version == studio_version
        [forced] = sync(edited, force=True)
        assert forced.outcome == "published version 3, the file's"
        assert edited.catalog.by_key[KEY].name == "Basic nurture (edited) (test fixture)"
    finally:
        edited.close()


# --- a publish reaches the next lead; enrolments keep their version ------------------------


def test_a_publish_reaches_the_next_signup_without_a_restart(services: Services) -> None:
    sync(services)
    before = sign_up(services, email="before@example.org", phone="+12085550101")
    version = publish_data(services, with_steps(live_data(services), NEW_STEP))
    assert version == 2 and services.catalog.by_key[KEY].version == 2
    after = sign_up(services, email="after@example.org", phone="+12085550102")
    assert "day-one-note" in step_keys(services, after)
    assert "day-one-note" not in step_keys(services, before)  # kept on version 1
    with services.sessions() as session:
        rows = session.execute(select(Enrollment.lead_id, Enrollment.sequence_version))
        versions = {lead: version for lead, version in rows}  # noqa: C416 - rows, not pairs
    assert versions == {before: 1, after: 2}


def test_the_gates_read_a_steps_rules_from_the_version_the_enrolment_is_on(
    services: Services,
) -> None:
    """Version 2 adds a condition no lead meets; a lead kept on version 1 is still sent the
    step, a lead on version 2 is not."""
    sync(services)
    kept = sign_up(services, email="kept@example.org", phone="+12085550103")
    data = live_data(services)
    data["steps"] = [
        {**step, "when": "lead.stage == 'patient'"} if step["key"] == "follow-up" else step
        for step in data["steps"]
    ]
    publish_data(services, data)
    moved_on = sign_up(services, email="new@example.org", phone="+12085550104")
    catalog = services.catalog
    verdicts = {}
    with services.sessions() as session:
        for lead_id in (kept, moved_on):
            [row] = [m for m in messages_of(session, lead_id) if m.step_key == "follow-up"]
            lead = session.get(Lead, lead_id)
            assert lead is not None
            verdict = gates.check(
                session,
                row,
                lead,
                policy=services.policy,
                clinic_zone=services.clinic.zone,
                now=FOLLOW_UP_DUE + timedelta(hours=1),
                catalog=catalog,
            )
            verdicts[lead_id] = verdict
    assert not isinstance(verdicts[kept], gates.Skip)
    skipped = verdicts[moved_on]
    assert isinstance(skipped, gates.Skip)
    assert "condition not met" in skipped.reason


def test_publishing_an_invalid_version_is_refused_and_changes_nothing(services: Services) -> None:
    sync(services)
    broken = with_steps(live_data(services), {**NEW_STEP, "template": "nope"})
    with services.sessions.begin() as session:
        draft = save(session, broken)
    with pytest.raises(ConfigError) as refused, services.sessions.begin() as session:
        publish(session, services, draft)
    reasons = [problem.reason for problem in refused.value.problems]
    assert reasons == ["steps[3] (day-one-note).template: no email template 'nope'"]
    with services.sessions() as session:
        assert sequence_store.published(session, KEY).version == 1  # type: ignore[union-attr]
        assert sequence_store.get_version(session, KEY, draft).state is TemplateState.DRAFT  # type: ignore[union-attr]


def test_a_key_cannot_change_and_a_deleted_draft_cannot_be_published(services: Services) -> None:
    sync(services)
    renamed = {**live_data(services), "key": "another-key"}
    problems = sequence_store.problems_of(
        sequence_store.to_source(renamed), KEY, None, templates=services.templates.available()
    )
    assert [p.reason for p in problems] == [
        "key: this is sequence 'basic-nurture'; a key cannot change (add a file for a new one)"
    ]
    with services.sessions.begin() as session:
        draft = save(session, live_data(services))
        sequence_store.delete_draft(session, KEY, draft, author=AUTHOR)
    with pytest.raises(VersionStateError, match="deleted draft"), services.sessions.begin() as s:
        publish(s, services, draft)


def test_a_rollback_publishes_a_copy_and_the_next_lead_gets_the_old_steps(
    services: Services,
) -> None:
    sync(services)
    publish_data(services, with_steps(live_data(services), NEW_STEP))
    with services.sessions.begin() as session:
        back = sequence_store.get_version(session, KEY, publish(session, services, 1))
        assert back is not None
    assert back.version == 3 and back.note == "rollback to version 1"
    lead_id = sign_up(services)
    assert "day-one-note" not in step_keys(services, lead_id)
    with services.sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("sequence.published") == 3  # the import, version 2, the rollback


# --- moving enrolled leads ----------------------------------------------------------------


def plan(services: Services, new: Sequence) -> version_moves.MovePlan:
    with services.sessions() as session:
        return version_moves.plan_move(
            session,
            new,
            policy=services.policy,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
        )


def move(services: Services, new: Sequence) -> version_moves.MovePlan:
    with services.sessions.begin() as session:
        return version_moves.apply_move(
            session,
            new,
            policy=services.policy,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="m@clinic.example",
        )


def test_the_preview_lists_added_removed_and_moved_messages_and_the_move_does_exactly_that(
    services: Services,
) -> None:
    sync(services)
    lead_id = sign_up(services, first_name="Maria", last_name="Garcia")
    data = live_data(services)
    data["steps"] = [
        {**step, "offset": "3d"} if step["key"] == "follow-up" else step
        for step in data["steps"]
        if step["key"] != "welcome"
    ] + [NEW_STEP]
    version = publish_data(services, data, enrolments="move")
    new = sequence_of(services, version)
    preview = plan(services, new)
    assert (preview.active, preview.changed, preview.unchanged) == (1, 1, 0)
    [lead] = preview.enrolments
    assert lead.lead_label == "Maria G." and lead.zone.key == "America/Boise"
    kinds = {change.step_key: change for change in lead.changes}
    assert set(kinds) == {"welcome", "follow-up", "day-one-note"}  # the opt-in text: unchanged
    assert kinds["welcome"].kind is ChangeKind.REMOVED and kinds["welcome"].after is None
    assert kinds["follow-up"].kind is ChangeKind.MOVED
    assert kinds["follow-up"].before == FOLLOW_UP_DUE
    assert kinds["follow-up"].after == FOLLOW_UP_DUE + timedelta(days=1)
    assert kinds["day-one-note"].kind is ChangeKind.ADDED
    # 10:00 in Boise (MST, UTC-7) the next day
    assert kinds["day-one-note"].after == datetime(2026, 3, 4, 17, 0, tzinfo=UTC)

    done = move(services, new)
    assert done.changed == 1
    with services.sessions() as session:
        rows = messages_of(session, lead_id)
        enrolment = session.scalars(select(Enrollment)).one()
    assert enrolment.sequence_version == version
    follow = [(m.status, m.due_at) for m in rows if m.step_key == "follow-up"]
    assert follow == [
        (MessageStatus.CANCELLED, FOLLOW_UP_DUE),
        (MessageStatus.SCHEDULED, FOLLOW_UP_DUE + timedelta(days=1)),
    ]
    assert [m.status for m in rows if m.step_key == "day-one-note"] == [MessageStatus.SCHEDULED]
    assert [m.status for m in rows if m.step_key == "welcome"] == [MessageStatus.CANCELLED]
    assert plan(services, new).active == 0  # on the new version: nothing left to move
    assert move(services, new).active == 0


def test_a_step_already_sent_is_never_planned_again_and_a_late_new_step_is_not_sent(
    services: Services,
) -> None:
    sync(services)
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        [follow] = [m for m in messages_of(session, lead_id) if m.step_key == "follow-up"]
        states.move(
            session,
            follow.id,
            from_=(MessageStatus.SCHEDULED,),
            to=MessageStatus.QUEUED,
            now=clock.utcnow(),
        )
    data = live_data(services)
    data["steps"] = [
        {**step, "template": "booking-nudge-2"} if step["key"] == "follow-up" else step
        for step in data["steps"]
    ] + [{**NEW_STEP, "key": "right-away", "offset": "-1h", "at": None}]
    data["steps"][-1].pop("at")
    new = sequence_of(services, publish_data(services, data))
    # An hour after sign-up: "right-away" (enrolment - 1h) is long past for this lead.
    with freeze_time(clock.utcnow() + timedelta(hours=1)):
        preview = plan(services, new)
        [lead] = preview.enrolments
        assert [(c.step_key, c.kind) for c in lead.changes] == [("right-away", ChangeKind.LATE)]
        assert lead.changes[0].after is None and "passed" in (lead.changes[0].why or "")
        move(services, new)
    assert step_keys(services, lead_id, status=MessageStatus.SKIPPED) == ["right-away"]
    with services.sessions() as session:
        [follow_row] = [m for m in messages_of(session, lead_id) if m.step_key == "follow-up"]
    # Queued (on its way) is left alone: no second follow-up, no cancelled one.
    assert (follow_row.status, follow_row.template_key) == (MessageStatus.QUEUED, "follow-up")


def test_a_removed_step_is_cancelled_and_a_consult_move_after_a_version_move_plans_once(
    services: Services,
) -> None:
    sync(services)
    lead_id = sign_up(services)
    data = live_data(services)
    reminder = {
        "key": "consult-reminder",
        "channel": "email",
        "purpose": "care",
        "template": "consult-reminder-email",
        "offset": "-1d",
        "anchor": "consult_at",
    }
    data["exit_on"] = []
    data["steps"] = [s for s in data["steps"] if s["key"] != "follow-up"] + [reminder]
    new = sequence_of(services, publish_data(services, data))
    consult = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    with services.sessions.begin() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        lead.consult_at, lead.consult_version = consult, 1
    [lead_change] = plan(services, new).enrolments
    assert {(c.step_key, c.kind) for c in lead_change.changes} == {
        ("follow-up", ChangeKind.REMOVED),
        ("consult-reminder", ChangeKind.ADDED),
    }
    move(services, new)
    # The same consult arrives again (a booking webhook delivered twice): nothing new planned.
    with services.sessions.begin() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        from nurture.outbox import planner

        planner.replan_consult(
            session,
            lead,
            catalog=services.sequences.current(session),
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        )
    scheduled = step_keys(services, lead_id, status=MessageStatus.SCHEDULED)
    assert scheduled == ["optin-confirmation", "welcome", "consult-reminder"]
    assert step_keys(services, lead_id, status=MessageStatus.CANCELLED) == ["follow-up"]
    with services.sessions() as session:
        moved = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "enrollment.moved")
        ).one()
    assert moved.details == {
        "sequence": KEY,
        "from_version": 1,
        "to_version": 2,
        "cancelled": 1,
        "planned": 1,
    }


def test_keeping_enrolments_leaves_their_rows_and_version_alone(services: Services) -> None:
    sync(services)
    lead_id = sign_up(services)
    before = step_keys(services, lead_id)
    publish_data(services, with_steps(live_data(services), NEW_STEP), enrolments="keep")
    assert step_keys(services, lead_id) == before
    with services.sessions() as session:
        assert session.scalars(select(Enrollment.sequence_version)).one() == 1
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "sequence.published")
            .order_by(AuditEvent.id.desc())
        ).first()
    assert event is not None and event.details["enrolments"] == "keep"


def test_apply_event_enrols_on_the_published_version(services: Services) -> None:
    """The lifecycle path (booking webhooks, staff) takes the catalog as published too."""
    sync(services)
    version = publish_data(services, with_steps(live_data(services), NEW_STEP))
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        apply_event(
            session,
            lead,
            LifecycleEvent.CONSULT_BOOKED,
            consult_at=datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
            catalog=services.sequences.current(session),
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        )
    with services.sessions() as session:
        assert session.scalars(select(Enrollment.sequence_version)).all() == [version]


def test_a_publish_in_another_process_is_seen_within_the_recheck_and_a_rolled_back_one_never(
    services: Services, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nurture.runtime import build_services

    sync(services)
    with freeze_time("2026-03-03 18:00:00") as frozen:
        assert services.catalog.by_key[KEY].version == 1  # read, and kept
        studio = build_services(settings)  # the web process, say; `services` is a worker
        try:
            here = sequence_store._last_publish_here
            publish_data(studio, with_steps(live_data(studio), NEW_STEP))
            # Another process's publish does not touch this process's counter.
            monkeypatch.setattr(sequence_store, "_last_publish_here", here)
        finally:
            studio.close()
        assert services.catalog.by_key[KEY].version == 1  # trusted for RECHECK_SECONDS
        frozen.tick(timedelta(seconds=sequence_store.RECHECK_SECONDS + 0.1))
        assert services.catalog.by_key[KEY].version == 2
    with services.sessions.begin() as session:
        draft = publish(session, services, save(session, live_data(services)))
        assert services.sequences.current(session).by_key[KEY].version == draft
        session.rollback()
    assert services.catalog.by_key[KEY].version == 2  # a publish here: asked again at once


def test_a_row_the_dispatcher_claims_during_a_move_goes_once_as_planned(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follow-up is due now and the new version moves it three days on. The dispatcher
    claims it after the move has read the enrolments and before it cancels anything: the
    claimed row goes as it was planned, and no replacement is written beside it, so the
    person gets it once."""
    sync(services)
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        [follow_up] = [m for m in messages_of(session, lead_id) if m.step_key == "follow-up"]
        follow_up.due_at = clock.utcnow()
    data = live_data(services)
    data["steps"] = [
        {**step, "offset": "3d"} if step["key"] == "follow-up" else step for step in data["steps"]
    ]
    new = sequence_of(services, publish_data(services, data, enrolments="keep"))
    read_enrolments = version_moves._work
    claimed: list[int] = []

    def then_the_dispatcher_claims(session: Session, *args: Any, **kwargs: Any) -> Any:
        work = read_enrolments(session, *args, **kwargs)
        assert work, "the enrolment is still to move"
        claimed.extend(c.id for c in dispatch.claim_due(session, now=clock.utcnow(), limit=10))
        return work

    monkeypatch.setattr(version_moves, "_work", then_the_dispatcher_claims)
    done = move(services, new)

    assert follow_up.id in claimed and done.changed == 1
    with services.sessions() as session:
        rows = [m for m in messages_of(session, lead_id) if m.step_key == "follow-up"]
        enrolment = session.scalars(select(Enrollment)).one()
        [entry] = session.scalars(select(AuditEvent).where(AuditEvent.action == "enrollment.moved"))
    assert [(m.id, m.status) for m in rows] == [(follow_up.id, MessageStatus.QUEUED)]
    assert enrolment.sequence_version == new.version
    assert (entry.details["cancelled"], entry.details["planned"]) == (0, 0)
