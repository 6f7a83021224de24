"""the browser's zone is stored apart from a zone set on purpose

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:30:00

Compliance rule 5: the zone a sign-up form's browser reports is weak evidence (people travel);
it may narrow a lead's send window but never widen it past what the ZIP code and the area code
allow, so it gets its own column, ``leads.browser_timezone``. ``leads.timezone`` now means a
zone set on purpose, by the person or by staff, and wins over everything.

Every existing ``timezone`` came from the sign-up form or the API (which forwards the
browser's), so every value moves to ``browser_timezone``. A value staff had set would stay, but
there is no staff action that sets a zone yet (no ``lead.timezone_set`` in the audit log), so
none stays. Downgrading puts the browser's zone back where it was, where none was set on
purpose since.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("browser_timezone", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE leads SET browser_timezone = timezone, timezone = NULL WHERE timezone IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE leads SET timezone = COALESCE(timezone, browser_timezone)")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("browser_timezone")
