"""Engines, sessions and the column types every model shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, Uuid, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to (and drop) what they created.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC and always returned timezone-aware.

    SQLite keeps no offsets and PostgreSQL returns them in the session zone; this type makes
    both give back aware UTC datetimes and refuses naive ones on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use clock.utcnow()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
    }


# An execution option that marks an engine's connections as read-only: see read_only().
READ_ONLY = "nurture_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this application relies on for each backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # pre_ping: a worker survives a PostgreSQL restart by reconnecting, not by crashing.
    # The pool keeps as many connections as a web process has threads for blocking calls
    # (anyio's default of 40); opened only when needed. With SQLAlchemy's default of 5 kept,
    # 16 sign-ups at a time opened and closed a connection for most of them: PostgreSQL's
    # CPU per sign-up halved (4.1 to 2.0 ms) once they were kept (docs/benchmarks.md).
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 40, "max_overflow": 10}
    engine = create_engine(url, **(options | kwargs))
    _configure_postgresql(engine)
    return engine


def read_only(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read.

    On SQLite they begin with a deferred BEGIN, so a page view or an API read never takes the
    write lock that workers and sign-ups wait for; on both backends a write in one fails at
    once instead of succeeding quietly.
    """
    return engine.execution_options(**{READ_ONLY: True})


def _reads_only(connection: Connection) -> bool:
    return bool(connection.get_execution_options().get(READ_ONLY))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets the web process read while a worker writes; several processes share the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # One pooled connection serves readers and writers in turn, so every begin states
        # which it is (query_only is a flag of the connection, not of the transaction).
        info = connection.info
        if _reads_only(connection):
            # Deferred: in WAL mode a reader sees a snapshot and holds no lock a writer needs.
            connection.exec_driver_sql("BEGIN")
            if not info.get("query_only"):
                connection.exec_driver_sql("PRAGMA query_only=ON")
                info["query_only"] = True
            return
        if info.get("query_only"):
            connection.exec_driver_sql("PRAGMA query_only=OFF")
            info["query_only"] = False
        # IMMEDIATE takes the write lock up front: a deferred transaction that later writes
        # can fail with SQLITE_BUSY at once, without waiting for busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # The driver opens the transaction with this, its first statement.
        if _reads_only(connection):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only (see :func:`read_only`): a flush or an UPDATE in one fails."""
    return sessionmaker(read_only(engine), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
