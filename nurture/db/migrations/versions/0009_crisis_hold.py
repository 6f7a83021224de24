"""a crisis holds every nurture send to that person, not only marketing

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:10:00

Compliance rule 26: crisis words pause all nurture sends to the person (their sequences'
care steps too) until a member of staff has spoken to them and lifts the hold. Replies (the
crisis reply itself, STOP confirmations) and staff alerts are not nurture sends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(
            sa.Column("crisis_hold_at", nurture.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("crisis_hold_at")
