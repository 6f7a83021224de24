"""`nurture users`: staff accounts."""

from __future__ import annotations

import sys

import click

from nurture.cli.base import UsageProblem, cli, cli_actor, services_or_exit, settings_or_exit


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
    elif not sys.stdin.isatty():
        # getpass would warn that it cannot hide the input, then give up.
        raise UsageProblem("no terminal to ask for the password on: pipe it to --password-stdin")
    else:
        password = click.prompt(
            "Password (12+ characters)", hide_input=True, confirmation_prompt="Once more"
        )
    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            user, created = staff.add_user(
                session,
                email,
                password,
                role=role,
                phone=phone,
                actor=cli_actor(),
                clinic_name=services.clinic.name,
            )
    except staff.StaffError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()
    click.echo(f"{'created' if created else 'updated'} {user.email} ({user.role.value})")


@users.command("list")
def users_list() -> None:
    """Every staff account: e-mail, role, whether it may sign in, last sign-in (UTC)."""
    from nurture import staff

    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions() as session:
            accounts = staff.all_users(session)
            rows = [
                (
                    user.email,
                    user.role.value,
                    "active" if user.active else "deactivated",
                    f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never",
                )
                for user in accounts
            ]
    finally:
        services.close()
    if not rows:
        click.echo("no staff accounts yet: add one with `nurture users add EMAIL --role admin`")
        return
    width = max(len(row[0]) for row in rows)
    click.echo(f"{'e-mail':<{width}}  {'role':<9}  {'state':<11}  last sign-in")
    for email, role, state, last in rows:
        click.echo(f"{email:<{width}}  {role:<9}  {state:<11}  {last}")


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Close an account: no more sign-ins, and its open sessions end now."""
    from nurture import staff

    services = services_or_exit(settings_or_exit())
    try:
        with services.sessions.begin() as session:
            user = staff.deactivate_user(session, email, actor=cli_actor())
            closed = user.email
    except staff.StaffError as error:
        raise UsageProblem(str(error)) from None
    finally:
        services.close()
    click.echo(f"deactivated {closed}: signed out everywhere, can no longer sign in")
