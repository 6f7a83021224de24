"""Compliance rule 24: the audit log and the consent ledger are append-only in the database
itself, and staff opening a lead's record leaves a trace in it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from nurture.db import make_engine
from nurture.db.models import AuditEvent
from nurture.runtime import Services
from nurture.web import create_app
from tests.db.test_admin_pages import sign_in
from tests.support.factories import sign_up

TABLES = ["audit_events", "consent_events"]
# Even a change that changes nothing fires the trigger: no row of evidence is ever rewritten.
STATEMENTS = {
    "update": "UPDATE {table} SET id = id",
    "delete": "DELETE FROM {table}",
}


def rows_of(services: Services, table: str) -> list[tuple[object, ...]]:
    with services.sessions() as session:
        return [tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY id"))]  # noqa: S608


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("verb", list(STATEMENTS))
def test_rule_24_the_database_refuses_to_change_or_remove_evidence(
    services: Services, table: str, verb: str
) -> None:
    sign_up(services)  # writes consent events and audit entries
    before = rows_of(services, table)
    assert before, "the sign-up wrote no rows to check"
    statement = text(STATEMENTS[verb].format(table=table))
    with services.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
        session.rollback()
    assert rows_of(services, table) == before


def test_rule_24_the_database_refuses_to_truncate_the_ledgers_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        for table in ("audit_events", "consent_events"):
            with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(f"TRUNCATE {table}"))
    finally:
        engine.dispose()


def test_rule_24_staff_opening_a_lead_is_audited(services: Services) -> None:
    lead_id = sign_up(services)
    ops = sign_in(create_app(services), services, "ops")
    assert ops.get(f"/admin/leads/{lead_id}").status_code == 200
    assert ops.get("/admin/leads/00000000-0000-0000-0000-000000000000").status_code == 404
    with services.sessions() as session:
        viewed = session.execute(
            select(AuditEvent.actor, AuditEvent.lead_id).where(AuditEvent.action == "lead.viewed")
        ).all()
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    assert viewed == [(ops.actor, lead_id)]
    assert total is not None and total > 1
