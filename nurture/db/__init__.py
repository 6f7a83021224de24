"""The database: engine and sessions, column types, the models, the audit log, migrations.

- `engine`: engines and session factories for SQLite and PostgreSQL, `session_scope` (the unit
  of work: callers commit, domain functions never do), `UTCDateTime`.
- `models`: the tables (DESIGN §4).
- `audit`: the append-only audit log every staff or system action writes to.
- `migrations/`: Alembic; one revision for every schema change.
"""

from nurture.db.engine import (
    NAMING_CONVENTION,
    READ_ONLY,
    Base,
    JSONType,
    UTCDateTime,
    make_engine,
    make_read_sessionmaker,
    make_sessionmaker,
    read_only,
    session_scope,
)

__all__ = [
    "NAMING_CONVENTION",
    "READ_ONLY",
    "Base",
    "JSONType",
    "UTCDateTime",
    "make_engine",
    "make_read_sessionmaker",
    "make_sessionmaker",
    "read_only",
    "session_scope",
]
