"""The root of the `nurture` command and what every command shares: reading the settings and
building the services, with wrong input reported plainly (exit 2), never as a traceback."""

from __future__ import annotations

import getpass
import logging
import os
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from nurture.config.settings import Settings
    from nurture.runtime import Services

# Each command imports what it needs: `nurture run` stays a bare Python that only watches its
# children, and no command pays for the whole application unless it uses it.

log = logging.getLogger("nurture")


class UsageProblem(click.ClickException):
    """A problem with the user's input or configuration: printed plainly, exit code 2."""

    exit_code = 2


def settings_or_exit() -> Settings:
    from pydantic import ValidationError

    from nurture.config.settings import get_settings

    try:
        return get_settings()
    except ValidationError as error:
        lines = []
        for item in error.errors(include_url=False):
            name = (
                "NURTURE_" + "_".join(str(p) for p in item["loc"]).upper()
                if item["loc"]
                else "settings"
            )
            lines.append(f"  {name}: {item['msg'].removeprefix('Value error, ')}")
        raise UsageProblem("configuration error:\n" + "\n".join(lines)) from None


def services_or_exit(settings: Settings) -> Services:
    from nurture.config.yamlconf import ConfigError
    from nurture.runtime import build_services

    try:
        return build_services(settings)
    except ConfigError as error:
        raise UsageProblem(f"configuration error:\n{error}") from None


ACTOR_KEY = "nurture.actor"


def cli_actor() -> str:
    """Who the audit trail says ran this command: `--as NAME`, or the login name (the person
    behind sudo, not root), as `cli:NAME`."""
    context = click.get_current_context(silent=True)
    named = context.meta.get(ACTOR_KEY) if context is not None else None
    if not named:
        try:
            named = os.environ.get("SUDO_USER") or getpass.getuser()
        except (KeyError, OSError):  # no login name in this container
            named = "unknown"
    return f"cli:{named}"


class CommandGroup(click.Group):
    """The root group: a command that fails in a way nobody foresaw says so in two lines
    (exit 1), never with a Python traceback unless NURTURE_DEBUG is set."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise click.Abort from None
        except Exception as error:
            if os.environ.get("NURTURE_DEBUG"):
                raise  # the engineer asked for the traceback
            raise click.ClickException(
                f"unexpected error ({type(error).__name__}): {error}\n"
                "Nothing more was done. Run it again with NURTURE_DEBUG=1 to see the traceback."
            ) from None


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--as",
    "as_",
    metavar="NAME",
    help="who is running this, for the audit trail (default: your login name)",
)
@click.pass_context
def cli(context: click.Context, as_: str | None) -> None:
    """nurture: consent-first e-mail and SMS lead nurture."""
    if as_ is not None:
        if not as_.strip() or len(as_) > 100 or not as_.isprintable():
            raise UsageProblem("--as: give a name of 1 to 100 printable characters")
        context.meta[ACTOR_KEY] = as_.strip()
