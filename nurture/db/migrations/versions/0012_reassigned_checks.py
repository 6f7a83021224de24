"""the Reassigned Numbers Database's answers, kept as the record and as the cache

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:00:00

Compliance rule 12: a text on an SMS consent older than the policy's check_after first asks
the FCC Reassigned Numbers Database (Twilio Lookup) whether the number changed hands since
the consent date. Each answer is a row: the proof that the number was checked before the
text, and the cache that spares a second lookup for the same number and consent date. The
new consent source `reassigned_number` needs no change: sources are stored as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reassigned_checks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("consent_date", sa.Date(), nullable=False),
        sa.Column("answer", sa.String(length=32), nullable=False),
        sa.Column("checked_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_reassigned_checks_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reassigned_checks")),
    )
    with op.batch_alter_table("reassigned_checks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reassigned_checks_phone_consent_date_checked_at"),
            ["phone", "consent_date", "checked_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("reassigned_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reassigned_checks_phone_consent_date_checked_at"))
    op.drop_table("reassigned_checks")
