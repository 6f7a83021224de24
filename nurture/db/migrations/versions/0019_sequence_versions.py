"""sequences versioned in the database, edited in the studio (issue 15 §1)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 00:00:00

``sequence_versions``: one row per version of a sequence, its YAML as the source; the files
under config/sequences/ are imported by ``nurture sequences sync`` (and ``db upgrade``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PUBLISHED = sa.text("state = 'published'")


def upgrade() -> None:
    instant = nurture.db.UTCDateTime(timezone=True)
    op.create_table(
        "sequence_versions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "published",
                "archived",
                "deleted",
                name="templatestate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("published_at", instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_versions")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_sequence_versions_key_version")),
    )
    with op.batch_alter_table("sequence_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_sequence_versions_published",
            ["key"],
            unique=True,
            postgresql_where=PUBLISHED,
            sqlite_where=PUBLISHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("sequence_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sequence_versions_published", postgresql_where=PUBLISHED, sqlite_where=PUBLISHED
        )
    op.drop_table("sequence_versions")
