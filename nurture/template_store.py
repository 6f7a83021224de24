"""Where message templates come from.

The files under ``templates/`` are the shipped defaults: ``email/<key>.md.j2``,
``sms/<key>.txt.j2`` and ``layouts/email.{html,txt}.j2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nurture.models import Channel
from nurture.rendering import EmailLayouts

SUFFIXES = {Channel.EMAIL: ".md.j2", Channel.SMS: ".txt.j2"}


class TemplateNotFoundError(LookupError):
    def __init__(self, channel: Channel, key: str) -> None:
        super().__init__(f"no {channel.value} template {key!r}")


@dataclass(frozen=True)
class TemplateRecord:
    channel: Channel
    key: str
    source: str
    version: int | None  # None for a file that was never imported as a version


class TemplateStore(Protocol):
    def get(self, channel: Channel, key: str) -> TemplateRecord: ...

    def keys(self) -> set[tuple[Channel, str]]: ...

    def email_layouts(self) -> EmailLayouts: ...


class FileTemplateStore:
    """Templates read from a directory; each read sees the file as it is now."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, channel: Channel, key: str) -> Path:
        return self.directory / channel.value / f"{key}{SUFFIXES[channel]}"

    def get(self, channel: Channel, key: str) -> TemplateRecord:
        path = self.path(channel, key)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateNotFoundError(channel, key) from None
        return TemplateRecord(channel=channel, key=key, source=source, version=None)

    def keys(self) -> set[tuple[Channel, str]]:
        found: set[tuple[Channel, str]] = set()
        for channel, suffix in SUFFIXES.items():
            for path in (self.directory / channel.value).glob(f"*{suffix}"):
                found.add((channel, path.name.removesuffix(suffix)))
        return found

    def email_layouts(self) -> EmailLayouts:
        layouts = self.directory / "layouts"
        return EmailLayouts(
            html=(layouts / "email.html.j2").read_text(encoding="utf-8"),
            text=(layouts / "email.txt.j2").read_text(encoding="utf-8"),
        )
