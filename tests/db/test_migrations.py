"""The models and the migrations describe the same schema, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nurture.db import Base, make_engine
from nurture.db.migrations import current_revision, head_revision


def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            drift = compare_metadata(context, Base.metadata)
        assert drift == [], f"models and migrations disagree; write a migration for: {drift}"
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
