"""one record per send attempt; delivery reports name their attempt and may wait for it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00

A report that beat the provider's answer used to be stored without a message and never
applied, and a late report about attempt 1 could move attempt 2's row (issue 11 §2, §3).
Each settled provider call is now a row of `message_attempts` with its own provider id; a
delivery event names its attempt and stays unapplied (`applied_at` null) until that attempt
settles. Existing sends become attempt rows, so reports about them are still found by sid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=True),
        sa.Column("started_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_attempts_message_id_messages"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_attempts")),
        sa.UniqueConstraint(
            "message_id", "number", name=op.f("uq_message_attempts_message_id_number")
        ),
    )
    with op.batch_alter_table("message_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_attempts_provider_id"), ["provider_id"], unique=False
        )
    # batch mode: SQLite cannot alter a table in place beyond the simplest ADD COLUMN.
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("applied_at", nurture.db.UTCDateTime(timezone=True), nullable=True)
        )

    # What was sent before: its last attempt, with the provider id the row holds.
    op.execute(
        "INSERT INTO message_attempts"
        " (message_id, number, provider_id, started_at, settled_at, outcome)"
        " SELECT id, CASE WHEN attempts > 0 THEN attempts ELSE 1 END, provider_id,"
        " COALESCE(sent_at, status_at), COALESCE(sent_at, status_at), 'sent'"
        " FROM messages WHERE provider_id IS NOT NULL"
    )
    # Reports matched to a message were weighed when they came; the others (no message found,
    # most likely early) stay unapplied, so a copy of one that arrives now can still land.
    op.execute(
        "UPDATE delivery_events SET applied_at = received_at, attempt = ("
        "SELECT CASE WHEN m.attempts > 0 THEN m.attempts ELSE 1 END FROM messages m"
        " WHERE m.id = delivery_events.message_id)"
        " WHERE message_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_column("applied_at")
        batch_op.drop_column("attempt")
    with op.batch_alter_table("message_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_attempts_provider_id"))
    op.drop_table("message_attempts")
