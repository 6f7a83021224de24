"""Template versions: sync from files, drafts, publish, rollback; the worker sends what is live."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nurture import clock
from nurture.content import template_store
from nurture.content.template_store import FileTemplateStore
from nurture.db.models import Channel, Message, MessageStatus, TemplateState, TemplateVersion
from nurture.preview import drafts
from nurture.runtime import Services, build_services
from tests.conftest import REPO, SettingsFactory
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up


def sync(services: Services, *, force: bool = False) -> list[str]:
    with services.sessions.begin() as session:
        return [
            str(line)
            for line in template_store.sync(
                session, services.templates.files, force=force, now=clock.utcnow()
            )
        ]


def history(services: Services, channel: Channel, key: str) -> list[tuple[int, str, str]]:
    with services.sessions() as session:
        return [
            (v.version, v.state.value, v.origin)
            for v in template_store.versions(session, channel, key)
        ]


@pytest.fixture
def editable(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[Services]:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    built = build_services(make_settings(templates_dir=templates))
    yield built
    built.close()


def test_sync_imports_every_file_once(services: Services) -> None:
    first = sync(services)
    assert "sms/optin-confirmation: imported version 1 and published it" in first
    assert all(line.endswith("unchanged") for line in sync(services))
    assert history(services, Channel.SMS, "optin-confirmation") == [(1, "published", "file")]


def test_a_changed_file_becomes_the_live_version(editable: Services) -> None:
    sync(editable)
    path = Path(editable.templates.files.path(Channel.SMS, "help-reply"))
    path.write_text(path.read_text().replace("Help:", "For help:"))
    assert "sms/help-reply: imported version 2 and published it" in sync(editable)
    assert history(editable, Channel.SMS, "help-reply") == [
        (2, "published", "file"),
        (1, "archived", "file"),
    ]


def test_a_file_never_overwrites_what_marketing_published(editable: Services) -> None:
    sync(editable)
    draft = drafts.save_draft(
        editable.studio,
        Channel.SMS,
        "help-reply",
        editable.templates.get(Channel.SMS, "help-reply").source.replace("Help:", "Need help?"),
        author="staff:m@clinic.example",
    )
    drafts.publish_version(
        editable.studio, Channel.SMS, "help-reply", draft.version, author="staff:m@clinic.example"
    )
    path = Path(editable.templates.files.path(Channel.SMS, "help-reply"))
    path.write_text(path.read_text().replace("Help:", "Support:"))
    [line] = [x for x in sync(editable) if x.startswith("sms/help-reply")]
    assert line == (
        "sms/help-reply: imported version 3 as a draft; version 2, published from the studio, "
        "stays live (--force publishes the file)"
    )
    assert "Need help?" in editable.templates.get(Channel.SMS, "help-reply").source
    assert "sms/help-reply: imported version" not in " ".join(
        sync(editable)
    )  # nothing new to import
    path.write_text(path.read_text().replace("Support:", "Help line:"))
    assert "published it" in next(
        x for x in sync(editable, force=True) if x.startswith("sms/help-reply")
    )
    assert "Help line:" in editable.templates.get(Channel.SMS, "help-reply").source


def test_publish_rollback_and_one_live_version(services: Services) -> None:
    sync(services)
    author = "staff:m@clinic.example"
    original = services.templates.get(Channel.SMS, "help-reply").source
    v2 = drafts.save_draft(
        services.studio,
        Channel.SMS,
        "help-reply",
        original.replace("Help:", "Help now:"),
        author=author,
    )
    drafts.publish_version(services.studio, Channel.SMS, "help-reply", v2.version, author=author)
    rolled = drafts.publish_version(services.studio, Channel.SMS, "help-reply", 1, author=author)
    assert rolled.version == 3
    assert history(services, Channel.SMS, "help-reply") == [
        (3, "published", "ui"),
        (2, "archived", "ui"),
        (1, "archived", "file"),
    ]
    assert services.templates.get(Channel.SMS, "help-reply").source == original
    with services.sessions() as session:
        row = template_store.get_version(session, Channel.SMS, "help-reply", 3)
        assert row is not None and row.note == "rollback to version 1"
        published = session.scalars(
            select(TemplateVersion).where(
                TemplateVersion.state == TemplateState.PUBLISHED,
                TemplateVersion.key == "help-reply",
            )
        ).all()
        assert len(published) == 1


def test_publish_refuses_a_version_with_lint_errors(services: Services) -> None:
    sync(services)
    bad = drafts.save_draft(
        services.studio,
        Channel.SMS,
        "optin-confirmation",
        "{{ clinic.sms_program_name }}: Ask us about ketamine! Reply STOP.",
        author="t",
    )
    with pytest.raises(drafts.PublishRefusedError) as refused:
        drafts.publish_version(
            services.studio, Channel.SMS, "optin-confirmation", bad.version, author="t"
        )
    assert "“ketamine” may not appear in a text" in str(refused.value)
    assert "Msg & data rates may apply" in str(refused.value)
    assert history(services, Channel.SMS, "optin-confirmation")[1] == (1, "published", "file")


def test_the_worker_sends_the_version_live_at_send_time_and_records_it(services: Services) -> None:
    sync(services)
    lead_id = sign_up(services)  # planned while version 1 was live
    source = services.templates.get(Channel.SMS, "optin-confirmation").source
    draft = drafts.save_draft(
        services.studio,
        Channel.SMS,
        "optin-confirmation",
        source.replace("You're signed up", "Welcome! You're signed up"),
        author="t",
    )
    drafts.publish_version(
        services.studio, Channel.SMS, "optin-confirmation", draft.version, author="t"
    )
    claim_and_send_all(services)
    [text] = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert "Welcome! You're signed up" in text.body
    with services.sessions() as session:
        sms: Message = next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)
    assert sms.template_version == 2


def test_files_are_the_fallback_before_the_first_sync(services: Services) -> None:
    record = services.templates.get(Channel.SMS, "help-reply")
    assert record.version is None
    assert (
        record.source == FileTemplateStore(REPO / "templates").get(Channel.SMS, "help-reply").source
    )


def test_a_runaway_template_fails_only_its_message_and_renders_outside_any_transaction(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(services)
    runaway = (
        "{{ clinic.sms_program_name }}: {% for i in range(99999) %}{% for j in range(99999) %}"
        "{% endfor %}{% endfor %}"
    )
    with services.sessions.begin() as session:  # straight to the store: lint would refuse it
        draft = template_store.save_draft(
            session, Channel.SMS, "optin-confirmation", runaway, author="t", now=clock.utcnow()
        )
        template_store.publish(
            session,
            Channel.SMS,
            "optin-confirmation",
            draft.version,
            author="t",
            now=clock.utcnow(),
        )
    connections_held: list[int] = []
    render_sms = services.renderer.render_sms

    def watched(*args: Any, **kwargs: Any) -> str:
        connections_held.append(services.engine.pool.checkedout())  # type: ignore[attr-defined]
        return render_sms(*args, **kwargs)

    monkeypatch.setattr(services.renderer, "render_sms", watched)
    lead_id = sign_up(services)
    started = time.monotonic()
    claim_and_send_all(services)
    assert time.monotonic() - started < 10  # did not hang
    with services.sessions() as session:
        rows = messages_of(session, lead_id)
    sms = next(m for m in rows if m.channel is Channel.SMS)
    assert sms.status is MessageStatus.FAILED
    assert sms.error_code == "template"
    assert "render budget exceeded: took longer than" in (sms.last_error or "")
    sent = [m for m in rows if m.channel is Channel.EMAIL and m.status is MessageStatus.SENT]
    assert sent  # the welcome e-mail still went
    assert connections_held == [0]  # no transaction, no connection, while it rendered
