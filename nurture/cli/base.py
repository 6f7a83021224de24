"""The root of the `nurture` command and what every command shares: reading the settings and
building the services, with wrong input reported plainly (exit 2), never as a traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """nurture: consent-first e-mail and SMS lead nurture."""
