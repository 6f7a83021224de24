"""booking tool webhooks: deliveries deduplicated and ordered (issue 13 §1)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 17:30:00

Each webhook delivery of a booking tool (Calendly, Cal.com, Acuity, Square) is kept once per
provider event identity (at-least-once deliveries count once), and each booking keeps the
timestamp of the last change applied, so a late delivery cannot undo a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "booking_deliveries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("delivery_key", sa.String(length=400), nullable=False),
        sa.Column("booking_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("booking_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_booking_deliveries_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_deliveries")),
        sa.UniqueConstraint(
            "provider", "delivery_key", name=op.f("uq_booking_deliveries_provider_delivery_key")
        ),
    )
    op.create_table(
        "booking_states",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("booking_key", sa.String(length=300), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("last_change", sa.String(length=32), nullable=False),
        sa.Column("consult_at", nurture.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_booking_states_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("provider", "booking_key", name=op.f("pk_booking_states")),
    )


def downgrade() -> None:
    op.drop_table("booking_states")
    op.drop_table("booking_deliveries")
