"""bounce and complaint webhooks from e-mail providers (issue 13 §3)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 17:30:00

Each bounce or complaint an e-mail provider reports is a row of ``email_feedback``, unique per
provider event id and address (deliveries are at-least-once), and counted by the ops console's
daily rates. ``email_webhook_tokens`` keeps the signature tokens already used (Mailgun signs a
timestamp and token, not the body, so a reused token is a replay). The consent sources
``bounce`` and ``complaint`` need no change: sources are stored as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "email_feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("occurred_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_feedback")),
        sa.UniqueConstraint(
            "provider",
            "event_id",
            "address",
            name=op.f("uq_email_feedback_provider_event_id_address"),
        ),
    )
    with op.batch_alter_table("email_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_feedback_received_at"), ["received_at"], unique=False
        )
    op.create_table(
        "email_webhook_tokens",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("seen_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "token", name=op.f("pk_email_webhook_tokens")),
    )


def downgrade() -> None:
    op.drop_table("email_webhook_tokens")
    with op.batch_alter_table("email_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_feedback_received_at"))
    op.drop_table("email_feedback")
