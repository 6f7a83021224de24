"""new-lead notices and first contact (issue 13 §5)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 17:30:00

``lead_arrivals``: one row per announced lead, with when staff were told (at once, or in the
morning digest), when a first contact is due (one business day) and when it happened.
``beat_ticks``: the last run of a beat task, so `nurture doctor` can tell a beat is alive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    instant = nurture.db.UTCDateTime(timezone=True)
    op.create_table(
        "lead_arrivals",
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("arrived_at", instant, nullable=False),
        sa.Column("came_by", sa.String(length=60), nullable=False),
        sa.Column("awaiting_digest", sa.Boolean(), nullable=False),
        sa.Column("announced_at", instant, nullable=True),
        sa.Column("contact_due_at", instant, nullable=True),
        sa.Column("first_contacted_at", instant, nullable=True),
        sa.Column("first_contacted_by", sa.String(length=200), nullable=True),
        sa.Column("first_contact_how", sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_lead_arrivals_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_lead_arrivals")),
    )
    with op.batch_alter_table("lead_arrivals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_arrivals_awaiting_digest_arrived_at"),
            ["awaiting_digest", "arrived_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_lead_arrivals_first_contacted_at_contact_due_at"),
            ["first_contacted_at", "contact_due_at"],
            unique=False,
        )
    op.create_table(
        "beat_ticks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", instant, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_beat_ticks")),
    )


def downgrade() -> None:
    op.drop_table("beat_ticks")
    with op.batch_alter_table("lead_arrivals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_arrivals_first_contacted_at_contact_due_at"))
        batch_op.drop_index(batch_op.f("ix_lead_arrivals_awaiting_digest_arrived_at"))
    op.drop_table("lead_arrivals")
