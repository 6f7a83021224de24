"""staff accounts are no longer locked: sign-ins are throttled by address and client instead

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:30:00

A lockout on the account row let anyone keep any staff member out, and answered faster for a
real address than for an unknown one (issue 10 §5). nurture.staff.login_throttle replaced it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop a column in place.
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("locked_until", nurture.db.UTCDateTime(timezone=True), nullable=True)
        )
