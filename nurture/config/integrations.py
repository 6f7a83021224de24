"""The booking tools' settings that are not secrets (config/integrations.yaml): which event
types count as the consult. Secrets stay in the environment (nurture.config.settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nurture.config.yamlconf import load_model

BookingProvider = Literal["calendly", "calcom", "acuity", "square"]
PROVIDERS: tuple[BookingProvider, ...] = ("calendly", "calcom", "acuity", "square")
FILE_NAME = "integrations.yaml"


def _event_types(value: object) -> object:
    """Names or ids as text (YAML reads ``42`` as a number); blanks and repeats refused."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("must be a list of event type names or ids, e.g. [Free consultation]")
    names: list[str] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValueError(f"{item!r} is not an event type name or id")
        name = str(item).strip()
        if not name:
            raise ValueError("an event type name is blank")
        if name in names:
            raise ValueError(f"{name!r} is listed twice")
        names.append(name)
    return names


class ConsultEventTypes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    calendly: tuple[str, ...] = ()
    calcom: tuple[str, ...] = ()
    acuity: tuple[str, ...] = ()
    square: tuple[str, ...] = ()

    _names = field_validator("calendly", "calcom", "acuity", "square", mode="before")(_event_types)


class Integrations(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    consult_event_types: ConsultEventTypes = Field(default_factory=ConsultEventTypes)

    def counts_as_consult(self, provider: BookingProvider, names: tuple[str, ...]) -> bool:
        """Whether a booking of an event type known by ``names`` (its id, name, URI, ...) is
        the consult: with no list for the provider, every booking is."""
        listed: tuple[str, ...] = getattr(self.consult_event_types, provider)
        if not listed:
            return True
        wanted = {name.casefold() for name in listed}
        return any(name.casefold() in wanted for name in names)


def load_integrations(config_dir: Path) -> Integrations:
    """The file's settings; without the file, every booking of every tool counts. Raises
    ConfigError naming the file, line and key of every problem."""
    path = config_dir / FILE_NAME
    if not path.exists():
        return Integrations()
    return load_model(path, Integrations)
