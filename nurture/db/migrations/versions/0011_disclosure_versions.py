"""every disclosure version ever shown is kept, and never changed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 16:00:00

Compliance rule 1: a consent's record must carry the exact wording the person agreed to. Each
version of config/disclosures.yaml is recorded in ``disclosure_versions`` when a process first
starts with it (nurture.consent.disclosures); the table is append-only like the ledgers of
0008, so wording on record can never be rewritten, whatever the application does.

No version is recorded here: the wording of earlier versions is whatever the clinic's file
said then, which only the consent events of that time hold (in their evidence).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nurture.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "disclosure_versions"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("email_marketing", sa.Text(), nullable=False),
        sa.Column("sms_marketing", sa.Text(), nullable=False),
        sa.Column("sms_care", sa.Text(), nullable=False),
        sa.Column("first_recorded_at", nurture.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_disclosure_versions")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # nurture_append_only() is 0008's: it refuses with a message naming the table.
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION nurture_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nurture_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: rows are never changed "
            "or removed'); END"
        )


def downgrade() -> None:
    # Dropping the table drops its triggers on both backends.
    op.drop_table(TABLE)
