"""Alembic environment: one engine from the configured URL, the application's metadata."""

from __future__ import annotations

from alembic import context

from nurture.db import (
    Base,
    make_engine,
    models,  # noqa: F401 - registers every table on Base.metadata
)

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
