"""`nurture users`: staff accounts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from nurture.cli.base import UsageProblem, cli, services_or_exit, settings_or_exit


@cli.group()
def users() -> None:
    """Staff accounts for the admin UI."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["marketing", "ops", "admin"]), required=True)
@click.option("--phone", help="mobile number for 'send test to me' texts")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_add(email: str, role: str, phone: str | None, password_stdin: bool) -> None:
    """Create a staff user (or reset their password and role). The password is prompted for."""
    from nurture import staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            user, created = staff.add_user(
                session,
                email,
                password,
                role=role,
                phone=phone,
                actor="cli",
                clinic_name=services.clinic.name,
            )
    except staff.StaffError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()
    click.echo(f"{'created' if created else 'updated'} {user.email} ({user.role.value})")
