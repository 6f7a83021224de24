"""`nurture sequences sync|history|publish` (issue 15 §1): the shell can do what the studio
does, and wrong input exits 2 with a message that says what and where."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture import clock
from nurture.config.settings import get_settings
from nurture.db.models import Enrollment
from nurture.program import sequence_store
from tests.db.test_cli import _embedded, _embedded_services, run
from tests.support.factories import sign_up

KEY = "consult-nurture"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_db_upgrade_imports_the_sequences_under_their_file_versions(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    code, output = run(["db", "upgrade"], env)
    assert code == 0, output
    assert f"sequences: {KEY}: imported version 2 and published it" in output
    code, output = run(["sequences", "sync"], env)
    assert code == 0 and f"{KEY}: unchanged" in output
    code, output = run(["sequences", "history", KEY], env)
    assert code == 0 and output.startswith("v2    published file")


def test_publish_refuses_what_does_not_validate_and_exits_2(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    services = _embedded_services(tmp_path)
    try:
        with services.sessions.begin() as session:
            live = sequence_store.published(session, KEY)
            assert live is not None
            broken = live.source.replace("offset: 2d", "offset: two days")
            draft = sequence_store.save_draft(session, KEY, broken, author="m", now=clock.utcnow())
    finally:
        services.close()
    for args, fragment in [
        (["sequences", "publish", KEY, "--version", "99"], "has no version 99"),
        (["sequences", "publish", "nope", "--version", "1"], "sequence nope has no version 1"),
        (
            ["sequences", "publish", KEY, "--version", str(draft.version)],
            f"{KEY} version {draft.version}:",
        ),
        (["sequences", "history", "nope"], "no stored version of 'nope'"),
    ]:
        code, output = run(args, env)
        assert code == 2, output
        assert fragment in output and "Traceback" not in output
    code, output = run(["sequences", "publish", KEY, "--version", str(draft.version)], env)
    assert "offset: bad duration 'two days'" in output


def test_publish_with_move_puts_enrolled_leads_on_the_new_version(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    assert run(["db", "upgrade"], env)[0] == 0
    services = _embedded_services(tmp_path)
    try:
        sign_up(services)
        with services.sessions.begin() as session:
            live = sequence_store.published(session, KEY)
            assert live is not None
            edited = live.source.replace("name: Consult nurture", "name: Consult nurture (new)")
            draft = sequence_store.save_draft(session, KEY, edited, author="m", now=clock.utcnow())
    finally:
        services.close()
    code, output = run(
        ["sequences", "publish", KEY, "--version", str(draft.version), "--move"], env
    )
    assert code == 0, output
    assert output.splitlines() == [
        f"{KEY}: version {draft.version} is live",
        "1 enrolment(s) moved; the messages of 0 changed",
    ]
    services = _embedded_services(tmp_path)
    try:
        with services.sessions() as session:
            versions = session.scalars(
                select(Enrollment.sequence_version).where(Enrollment.sequence_key == KEY)
            ).all()
    finally:
        services.close()
    assert versions == [draft.version]
