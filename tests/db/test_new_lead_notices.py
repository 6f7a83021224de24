"""Speed-to-lead notices (issue 13 §5): every new lead is announced to the clinic's staff at
once in staffed hours, or in the digest when staffed hours begin; never with health details;
once per lead; in the sign-up's own transaction. On PostgreSQL and SQLite."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import select

from nurture import clock
from nurture.config.clinic import load_clinic
from nurture.config.settings import Settings
from nurture.config.yamlconf import ConfigError
from nurture.db.models import AuditEvent, Channel, Lead, LeadArrival, Message, Purpose
from nurture.leads import notices
from nurture.leads.intake import StaffContact, parse_signup, submit_signup
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support import outbox_files
from tests.support.api import API_KEY, api_signup_data
from tests.support.factories import EVIDENCE, claim_and_send_all, signup_data

FRONT_DESK = "frontdesk@kiidaho.example"  # config/clinic.yaml
DESK_PHONE = "+12085550142"
# Words about health or the sign-up's answers that a notice must never carry.
HEALTH_WORDS = re.compile(r"ketamine|depress|infusion|diagnos|treatment|suicid|medic", re.I)


def sign_up(services: Services, **overrides: Any) -> uuid.UUID:
    """A sign-up as the web form and the API make it: with the staff to tell."""
    return submit_signup(
        services.sessions,
        parse_signup(signup_data(**overrides)),
        EVIDENCE,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
        staff=StaffContact(services.clinic, services.settings.public_url),
    ).lead_id


def alerts(services: Services) -> list[Message]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.purpose == Purpose.ALERT).order_by(Message.id)
            )
        )


def arrival(services: Services, lead_id: uuid.UUID) -> LeadArrival:
    with services.sessions() as session:
        return session.get_one(LeadArrival, lead_id)


def digest(services: Services) -> int:
    with services.sessions.begin() as session:
        return notices.send_digest(
            session,
            clinic=services.clinic,
            public_url=services.settings.public_url,
            now=clock.utcnow(),
        )


def at(instant: str) -> Any:
    return freeze_time(instant)


def config_with_notices(basic_config_dir: Path, target: Path, **block: Any) -> Path:
    """The test configuration with clinic.yaml's new_lead_notices set to ``block``."""
    shutil.copytree(basic_config_dir, target)
    clinic = yaml.safe_load((target / "clinic.yaml").read_text())
    clinic["new_lead_notices"] = {**clinic["new_lead_notices"], **block}
    (target / "clinic.yaml").write_text(yaml.safe_dump(clinic))
    return target


@pytest.fixture
def settings(make_settings: SettingsFactory, basic_config_dir: Path, tmp_path: Path) -> Settings:
    """The test clinic, telling its front-desk inbox of new leads."""
    config = config_with_notices(basic_config_dir, tmp_path / "config", email=[FRONT_DESK])
    return make_settings(config_dir=config)


@pytest.fixture
def texting_desk(
    make_settings: SettingsFactory, basic_config_dir: Path, tmp_path: Path
) -> Iterator[Services]:
    """The test clinic with a front-desk phone as well as the front-desk inbox."""
    config = config_with_notices(
        basic_config_dir, tmp_path / "texting", email=[FRONT_DESK], sms=[DESK_PHONE]
    )
    built = build_services(make_settings(config_dir=config))
    yield built
    built.close()


def test_a_lead_in_staffed_hours_is_announced_at_once(services: Services) -> None:
    # The fixture's instant: Tuesday 2026-03-03, 11:00 in Boise.
    lead_id = sign_up(services)
    [notice] = alerts(services)
    assert (notice.channel, notice.template_key, notice.recipient) == (
        Channel.EMAIL,
        notices.NOTICE,
        FRONT_DESK,
    )
    assert notice.lead_id == lead_id
    assert notice.context["lead_url"] == f"https://nurture.test/admin/leads/{lead_id}"
    row = arrival(services, lead_id)
    assert not row.awaiting_digest and row.announced_at is not None
    assert row.came_by == "the API"
    # One business day: Wednesday at 11:00 in Boise.
    assert row.contact_due_at is not None
    assert row.contact_due_at - row.arrived_at == timedelta(hours=24)
    assert row.contact_due_at.astimezone(services.clinic.zone).hour == 11
    with services.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lead_id == lead_id)
        ).all()
    assert "lead.announced" in actions


def test_the_notice_says_nothing_about_health(texting_desk: Services) -> None:
    services = texting_desk
    lead_id = sign_up(
        services,
        first_name="Ana",
        last_name="Rivera",
        source={"utm_campaign": "ketamine-depression", "answers": "treatment-resistant"},
    )
    claim_and_send_all(services)
    outbox = services.settings.resolved_outbox_dir
    [mail] = [m for m in outbox_files.emails(outbox) if m["To"] == FRONT_DESK]
    [text] = [t for t in outbox_files.texts(outbox) if t.to == DESK_PHONE]
    body = mail.get_body(("plain",))
    assert body is not None
    # What the notice says, without the staff footer every alert shares (the clinic's name).
    said, _, footer = body.get_content().replace("\r\n", "\n").partition("\n--\n")
    assert "Sent by nurture to the staff" in footer
    for shown in (str(mail["Subject"]), said, text.body):
        assert "Ana R." in shown
        assert not HEALTH_WORDS.search(shown), shown
        assert "Rivera" not in shown  # the last initial only
        assert "ana.rivera@example.com" not in shown and "555-0123" not in shown
        assert "utm" not in shown and "answers" not in shown
    assert f"https://nurture.test/admin/leads/{lead_id}" in text.body
    assert f"https://nurture.test/admin/leads/{lead_id}" in body.get_content()
    assert text.body.startswith(services.clinic.sms_program_name)


def test_a_lead_at_night_waits_for_the_morning_digest(texting_desk: Services) -> None:
    services = texting_desk
    with at("2026-03-04 04:30:00"):  # Tuesday 21:30 in Boise
        night_owl = sign_up(services)
        assert alerts(services) == []
        assert digest(services) == 0  # nobody is there to read it
    with at("2026-03-04 09:00:00"):  # 02:00
        second = sign_up(services, first_name="Bo", email="bo@example.com", phone="+12085550124")
        assert digest(services) == 0
    with at("2026-03-04 14:59:00"):  # 07:59, a minute before opening
        assert digest(services) == 0
    assert alerts(services) == []
    assert arrival(services, night_owl).awaiting_digest
    with at("2026-03-04 15:00:30"):  # Wednesday 08:00: the first beat tick in staffed hours
        assert digest(services) == 2
        assert digest(services) == 0  # each lead is in one digest
    sent = alerts(services)
    assert [(m.channel, m.template_key, m.recipient) for m in sent] == [
        (Channel.EMAIL, notices.DIGEST, FRONT_DESK),
        (Channel.SMS, notices.DIGEST, DESK_PHONE),
    ]
    listed = sent[0].context["leads"]
    assert [item["lead_url"].rsplit("/", 1)[1] for item in listed] == [
        str(night_owl),
        str(second),
    ]
    assert [item["lead_name"] for item in listed] == ["Ana R.", "Bo R."]
    for lead_id in (night_owl, second):
        row = arrival(services, lead_id)
        assert not row.awaiting_digest and row.announced_at is not None
    with at("2026-03-04 15:01:00"):
        claim_and_send_all(services)
    outbox = services.settings.resolved_outbox_dir
    [mail] = [m for m in outbox_files.emails(outbox) if m["To"] == FRONT_DESK]
    assert mail["Subject"] == "2 new leads while the clinic was closed"
    text = mail.get_body(("plain",))
    assert text is not None and "Ana R." in text.get_content() and "Bo R." in text.get_content()
    [page] = [t for t in outbox_files.texts(outbox) if t.to == DESK_PHONE]
    assert "2 new leads" in page.body and "Ana" not in page.body
    assert not HEALTH_WORDS.search(
        text.get_content().replace("\r\n", "\n").partition("\n--\n")[0] + page.body
    )


def test_the_digest_follows_the_clinic_clock_across_daylight_saving(services: Services) -> None:
    # Friday 2026-03-06 19:00 MST; clocks spring forward on Sunday 2026-03-08.
    with at("2026-03-07 02:00:00"):
        lead_id = sign_up(services)
    # Monday 08:00 is 14:00 UTC under MDT (it was 15:00 UTC the week before).
    with at("2026-03-09 13:59:00"):
        assert digest(services) == 0
    with at("2026-03-09 14:00:00"):
        assert digest(services) == 1
    # The business day of a lead who came in while closed is Monday's: due at Monday's close.
    assert arrival(services, lead_id).contact_due_at == datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def test_a_federal_holiday_is_not_staffed(services: Services) -> None:
    with at("2026-05-25 17:00:00"):  # Memorial Day, 11:00 in Boise
        lead_id = sign_up(services)
        assert alerts(services) == []
        assert digest(services) == 0
    assert arrival(services, lead_id).awaiting_digest
    with at("2026-05-26 14:00:00"):  # Tuesday 08:00 MDT
        assert digest(services) == 1


def test_a_repeat_sign_up_announces_nothing_again(services: Services) -> None:
    first = sign_up(services)
    again = sign_up(services, phone="(208) 555-0123")
    assert again == first
    assert len(alerts(services)) == 1
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, first)
        notices.announce_new_lead(
            session,
            lead,
            came_by="a Calendly booking",
            clinic=services.clinic,
            public_url=services.settings.public_url,
            now=clock.utcnow(),
            actor="test",
        )
    assert len(alerts(services)) == 1  # announced once, whoever calls


def test_a_failed_sign_up_announces_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = notices.announce_new_lead

    def announce_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("the database went away after the notice was planned")

    monkeypatch.setattr(notices, "announce_new_lead", announce_then_fail)
    with pytest.raises(RuntimeError):
        sign_up(services)
    assert alerts(services) == []
    with services.sessions() as session:
        assert session.scalars(select(LeadArrival)).all() == []


def test_a_sign_up_through_the_api_announces_the_lead(services: Services, client: Any) -> None:
    response = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
    assert response.status_code in (200, 201), response.text
    [notice] = alerts(services)
    assert notice.template_key == notices.NOTICE


def test_nobody_to_tell_still_starts_the_clock(
    make_settings: SettingsFactory, basic_config_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "bare"
    shutil.copytree(basic_config_dir, config)
    clinic = yaml.safe_load((config / "clinic.yaml").read_text())
    del clinic["new_lead_notices"]  # the block is optional: nobody to tell, default hours
    (config / "clinic.yaml").write_text(yaml.safe_dump(clinic))
    services = build_services(make_settings(config_dir=config))
    try:
        lead_id = sign_up(services)
        assert alerts(services) == []
        assert arrival(services, lead_id).contact_due_at is not None
    finally:
        services.close()


@pytest.mark.parametrize(
    ("block", "said"),
    [
        ({"sms": ["208-555-0142"]}, "is not an E.164 number"),
        ({"email": ["front desk"]}, "new_lead_notices"),
        ({"staffed": {"days": [], "start": "08:00", "end": "18:00"}}, "at least one day"),
        ({"staffed": {"start": "18:00", "end": "08:00"}}, "end must be after start"),
        ({"phone": ["+12085550142"]}, "phone"),
    ],
)
def test_a_bad_notices_block_is_refused_clearly(
    basic_config_dir: Path, tmp_path: Path, block: dict[str, Any], said: str
) -> None:
    config = tmp_path / "bad"
    shutil.copytree(basic_config_dir, config)
    clinic = yaml.safe_load((config / "clinic.yaml").read_text())
    clinic["new_lead_notices"] = block
    (config / "clinic.yaml").write_text(yaml.safe_dump(clinic))
    with pytest.raises(ConfigError) as raised:
        load_clinic(config)
    assert said in str(raised.value)
    assert "clinic.yaml" in str(raised.value)


def test_the_beat_runs_the_digest_every_minute(settings: Settings) -> None:
    import workers.tasks  # noqa: F401 - registers the tasks
    from workers.app import app, celery_config

    entry = celery_config(settings)["beat_schedule"]["new-lead-digest"]
    assert entry["task"] == "nurture.new_lead_digest" and entry["task"] in app.tasks
    assert entry["schedule"] <= 60
