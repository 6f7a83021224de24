"""the funnel's sources and clicks, and A/B variants on messages (issue 15 §2, §3)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 21:00:00

``leads.utm_*``: the first sign-up's UTM tags, so the funnel can group by where people came
from. ``messages.variant``: which of a step's A/B variants this message was assigned.
``link_clicks``: first-party clicks on tracked links (``/r/{token}``), counted in the funnel.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in UTM:
            batch_op.add_column(sa.Column(name, sa.String(length=200), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant", sa.String(length=40), nullable=True))
    instant = nurture.db.UTCDateTime(timezone=True)
    op.create_table(
        "link_clicks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicked_at", instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_link_clicks_message_id_messages"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_link_clicks_lead_id_leads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_clicks")),
    )
    with op.batch_alter_table("link_clicks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_clicks_message_id"), ["message_id"])
        batch_op.create_index(
            batch_op.f("ix_link_clicks_lead_id_clicked_at"), ["lead_id", "clicked_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("link_clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_clicks_lead_id_clicked_at"))
        batch_op.drop_index(batch_op.f("ix_link_clicks_message_id"))
    op.drop_table("link_clicks")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("variant")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in reversed(UTM):
            batch_op.drop_column(name)
