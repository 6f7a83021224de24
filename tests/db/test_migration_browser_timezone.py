"""Migration 0010 (compliance rule 5): every zone stored so far came from a browser (the form,
or the API forwarding one), so it moves to ``browser_timezone``; ``timezone`` now means a zone
set on purpose. Upgraded from 0009 with rows in place, on both backends."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from nurture.db import UTCDateTime, make_engine
from nurture.db.migrations import alembic_config, upgrade

_names = itertools.count()
LEADS = sa.table(
    "leads",
    sa.column("id", sa.Uuid()),
    sa.column("first_name", sa.String()),
    sa.column("last_name", sa.String()),
    sa.column("timezone", sa.String()),
    sa.column("stage", sa.String()),
    sa.column("consult_version", sa.Integer()),
    sa.column("attributes", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
BOISE_LEAD, UNKNOWN_LEAD = uuid.uuid4(), uuid.uuid4()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, for the migrations to build step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    postgres: Any = request.getfixturevalue("postgres")
    name = f"nurture_m_{os.getpid()}_{next(_names)}"
    with postgres.engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres.url_for(name)
    finally:
        with postgres.engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def zones(url: str) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    leads = sa.table(
        "leads",
        sa.column("id", sa.Uuid()),
        sa.column("timezone", sa.String()),
        sa.column("browser_timezone", sa.String()),
    )
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(leads)).all()
        return {row.id: (row.timezone, row.browser_timezone) for row in rows}
    finally:
        engine.dispose()


def test_rule_5_migration_0010_moves_stored_zones_to_browser_timezone(
    empty_database: str,
) -> None:
    upgrade(empty_database, "0009")
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(
                LEADS.insert(),
                [
                    {
                        "id": lead_id,
                        "first_name": name,
                        "last_name": "",
                        "timezone": zone,
                        "stage": "signed_up",
                        "consult_version": 0,
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for lead_id, name, zone in [
                        (BOISE_LEAD, "Boise", "America/Boise"),
                        (UNKNOWN_LEAD, "Unknown", None),
                    ]
                ],
            )
    finally:
        engine.dispose()

    upgrade(empty_database, "0010")
    assert zones(empty_database) == {
        BOISE_LEAD: (None, "America/Boise"),  # came from the form: the browser's, not on purpose
        UNKNOWN_LEAD: (None, None),
    }

    command.downgrade(alembic_config(empty_database), "0009")
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            back: dict[str, str | None] = {
                row.first_name: row.timezone
                for row in connection.execute(sa.select(LEADS.c.first_name, LEADS.c.timezone))
            }
    finally:
        engine.dispose()
    assert back == {"Boise": "America/Boise", "Unknown": None}
