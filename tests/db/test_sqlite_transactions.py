"""Which transactions take the SQLite write lock: writers up front, readers never.

A read that took the write lock (as every transaction once did) made each page view wait for a
worker's send, and a worker wait for every page view; under load the web process and dispatch
then failed with "database is locked". A reader must also never write by mistake: a read
session that tries fails at once, on both backends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from nurture.db.models import Lead, Message
from nurture.runtime import Services
from tests.support.factories import sign_up

# The lock tests are about SQLite; the read-only one runs on both backends.
only_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# SQLite: "attempt to write a readonly database"; PostgreSQL: "... in a read-only transaction".
READ_ONLY_REFUSAL = r"read-?only"


def _other_writer(services: Services) -> sqlite3.Connection:
    """Another process's connection to the same file, that gives up on a lock after 0.5 s."""
    database = make_url(services.settings.resolved_database_url).database
    assert database is not None
    other = sqlite3.connect(Path(database), timeout=0.5, isolation_level=None)
    other.execute("PRAGMA busy_timeout=500")
    return other


@only_sqlite
def test_a_writer_commits_while_a_read_transaction_is_open(services: Services) -> None:
    lead_id = sign_up(services)
    other = _other_writer(services)
    try:
        with services.read_sessions() as reader:
            before = reader.get_one(Lead, lead_id).first_name  # the read transaction is open
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE leads SET first_name = 'Written' WHERE first_name = ?", (before,))
            other.execute("COMMIT")
            # The reader keeps its snapshot and carries on.
            assert reader.scalar(select(Lead.first_name)) == before
    finally:
        other.close()
    with services.read_sessions() as later:
        assert later.get_one(Lead, lead_id).first_name == "Written"


@only_sqlite
def test_a_write_transaction_takes_the_write_lock_up_front(services: Services) -> None:
    sign_up(services)
    other = _other_writer(services)
    try:
        with services.sessions() as writer:
            writer.execute(select(Lead.id)).all()  # only a read so far: the lock is held anyway
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_a_read_session_that_writes_fails_loudly(services: Services) -> None:
    lead_id = sign_up(services)
    with services.read_sessions() as reader:
        reader.get_one(Lead, lead_id).first_name = "Changed"
        with pytest.raises(DBAPIError, match=READ_ONLY_REFUSAL):
            reader.flush()
    with services.read_sessions() as reader, pytest.raises(DBAPIError, match=READ_ONLY_REFUSAL):
        reader.execute(update(Message).values(attempts=Message.attempts + 1))
    with services.read_sessions() as reader:
        assert reader.get_one(Lead, lead_id).first_name == "Ana"


@only_sqlite
def test_a_connection_a_reader_used_writes_again_for_a_writer(services: Services) -> None:
    lead_id = sign_up(services)
    with services.read_sessions() as reader:
        reader.execute(text("SELECT 1"))
        used_by_reader = reader.connection().connection.dbapi_connection
    with services.sessions.begin() as writer:
        # The pool hands the same connection back: its read-only flag must be off again.
        assert writer.connection().connection.dbapi_connection is used_by_reader
        writer.get_one(Lead, lead_id).first_name = "Rewritten"
    with services.read_sessions() as reader:
        assert reader.get_one(Lead, lead_id).first_name == "Rewritten"
