"""Whether a test's code under watch holds a database transaction open (it must not while it
waits on a provider): a probe from outside, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

from sqlalchemy import text
from sqlalchemy.engine import make_url

from nurture.runtime import Services


def transaction_open_elsewhere(services: Services) -> bool:
    """Does any connection (other than a fresh probe) hold a transaction on this database?"""
    url = make_url(services.settings.database_url)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(str(url.database), timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:  # database is locked
            return True
        finally:
            probe.close()
    with services.engine.connect() as connection:
        busy = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        )
    return bool(busy)
