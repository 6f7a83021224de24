"""replies and DSNs read from the reply mailbox over IMAP (issue 13 §2)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import nurture.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mailbox_messages",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("mailbox", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("replied_to_id", BIG_ID, nullable=True),
        sa.Column("inbound_id", BIG_ID, nullable=True),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("received_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_mailbox_messages_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["replied_to_id"],
            ["messages.id"],
            name=op.f("fk_mailbox_messages_replied_to_id_messages"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound_messages.id"],
            name=op.f("fk_mailbox_messages_inbound_id_inbound_messages"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_messages")),
        sa.UniqueConstraint(
            "mailbox",
            "uidvalidity",
            "uid",
            name=op.f("uq_mailbox_messages_mailbox_uidvalidity_uid"),
        ),
    )
    with op.batch_alter_table("mailbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mailbox_messages_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mailbox_messages_lead_id_received_at"),
            ["lead_id", "received_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_messages_lead_id_received_at"))
        batch_op.drop_index(batch_op.f("ix_mailbox_messages_fingerprint"))
    op.drop_table("mailbox_messages")
