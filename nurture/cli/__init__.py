"""The `nurture` command, one module per command group. Wrong input exits 2 with a message that
says what and where.

Each command imports what it needs when it runs: `nurture run` stays a bare Python that only
watches its children, and no command pays for the whole application unless it uses it.
"""

from __future__ import annotations

import sys

import click

# Importing each command group's module registers it on the root group.
from nurture.cli import (  # noqa: F401
    consent,
    doctor,
    leads,
    ops,
    processes,
    report,
    sequences,
    templates,
    users,
)
from nurture.cli.base import UsageProblem, cli

__all__ = ["UsageProblem", "cli", "main"]


def main() -> None:
    try:
        cli(prog_name="nurture", standalone_mode=True)
    except Exception as error:
        # Only a command that opened a database can have raised its errors: looking them up
        # (not importing SQLAlchemy) keeps `nurture run`'s supervisor free of it.
        sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_errors is None or not isinstance(
            error, (sqlalchemy_errors.OperationalError, sqlalchemy_errors.ProgrammingError)
        ):
            raise
        # Usually a database that is not there or not migrated: say so, without a stack.
        click.echo(
            f"database error: {error.orig}\nIs NURTURE_DATABASE_URL right, and has "
            "`nurture db upgrade` run?",
            err=True,
        )
        sys.exit(2)
