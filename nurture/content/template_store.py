"""Where message templates come from, and their versions.

The files under ``templates/`` are the shipped defaults: ``email/<key>.md.j2``,
``sms/<key>.txt.j2`` and ``layouts/email.{html,txt}.j2``. ``nurture templates sync`` imports
them into ``template_versions``; from then on the worker renders the version published in the
database, which marketing edits in the studio (draft → published → archived).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from nurture.content.rendering import EmailLayouts
from nurture.db import audit
from nurture.db.models import Channel, TemplateVersion
from nurture.db.versioning import Lineage, VersionStateError

SUFFIXES = {Channel.EMAIL: ".md.j2", Channel.SMS: ".txt.j2"}


# Publishing a deleted draft, deleting a published version: the rules are shared.
TemplateStateError = VersionStateError


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
    def get(
        self, channel: Channel, key: str, *, session: Session | None = None
    ) -> TemplateRecord: ...

    def available(self) -> set[tuple[Channel, str]]: ...

    def email_layouts(self) -> EmailLayouts: ...


class FileTemplateStore:
    """Templates read from a directory; each read sees the file as it is now."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, channel: Channel, key: str) -> Path:
        return self.directory / channel.value / f"{key}{SUFFIXES[channel]}"

    def get(self, channel: Channel, key: str, *, session: Session | None = None) -> TemplateRecord:
        path = self.path(channel, key)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateNotFoundError(channel, key) from None
        return TemplateRecord(channel=channel, key=key, source=source, version=None)

    def available(self) -> set[tuple[Channel, str]]:
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


def file_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class DbTemplateStore:
    """The published version of each template, from the database: what marketing published in
    the studio is what the next message says, without a deploy. A template never imported falls
    back to its file (a fresh database before `nurture templates sync`)."""

    def __init__(self, sessions: sessionmaker[Session], files: FileTemplateStore) -> None:
        self.sessions = sessions
        self.files = files

    def get(self, channel: Channel, key: str, *, session: Session | None = None) -> TemplateRecord:
        """Pass the caller's session when inside a transaction: on SQLite a second connection
        would wait for the first one's write lock."""
        if session is not None:
            row = published(session, channel, key)
        else:
            with self.sessions() as own:
                row = published(own, channel, key)
        if row is None:
            return self.files.get(channel, key)
        return TemplateRecord(channel=channel, key=key, source=row.source, version=row.version)

    def available(self) -> set[tuple[Channel, str]]:
        return self.files.available()

    def email_layouts(self) -> EmailLayouts:
        return self.files.email_layouts()


def lineage(channel: Channel, key: str) -> Lineage[TemplateVersion]:
    return Lineage(TemplateVersion, f"{channel.value}/{key}", channel=channel, key=key)


def published(session: Session, channel: Channel, key: str) -> TemplateVersion | None:
    return lineage(channel, key).live(session)


def versions(session: Session, channel: Channel, key: str) -> list[TemplateVersion]:
    """Every version, newest first."""
    return lineage(channel, key).history(session)


def get_version(
    session: Session, channel: Channel, key: str, version: int
) -> TemplateVersion | None:
    return lineage(channel, key).get(session, version)


def save_draft(
    session: Session,
    channel: Channel,
    key: str,
    source: str,
    *,
    author: str,
    now: datetime,
    note: str | None = None,
) -> TemplateVersion:
    """Every save is a new version: no edit is ever lost."""
    draft = lineage(channel, key).add_draft(
        session, source, origin="ui", author=author, now=now, note=note
    )
    audit.record(
        session,
        actor=author,
        action="template.draft_saved",
        details={"channel": channel.value, "key": key, "version": draft.version},
    )
    return draft


def publish(
    session: Session,
    channel: Channel,
    key: str,
    version: int,
    *,
    author: str,
    now: datetime,
    reviewed: str | None = None,
) -> TemplateVersion:
    """Make ``version`` the live one (a rollback publishes a copy: nurture.db.versioning).
    Lint is the caller's job (``nurture.content.lint``). ``reviewed`` names the live version
    the publisher saw the diff against, for the audit trail."""
    lines = lineage(channel, key)
    before = lines.live(session)
    target = lines.publish(session, version, author=author, now=now)
    if before is not None and before.id == target.id:
        return target
    audit.record(
        session,
        actor=author,
        action="template.published",
        details={
            "channel": channel.value,
            "key": key,
            "version": target.version,
            "from_version": version,
            **({"reviewed_against": reviewed} if reviewed is not None else {}),
        },
    )
    return target


def delete_draft(
    session: Session, channel: Channel, key: str, version: int, *, author: str
) -> TemplateVersion:
    """Throw a draft away (only a draft: nurture.db.versioning)."""
    target = lineage(channel, key).delete_draft(session, version)
    audit.record(
        session,
        actor=author,
        action="template.draft_deleted",
        details={"channel": channel.value, "key": key, "version": version},
    )
    return target


@dataclass(frozen=True)
class SyncLine:
    channel: Channel
    key: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.channel.value}/{self.key}: {self.outcome}"


def sync(
    session: Session,
    files: FileTemplateStore,
    *,
    force: bool = False,
    now: datetime,
    author: str = "files",
    problems: Callable[[Channel, str, str], list[str]] | None = None,
) -> list[SyncLine]:
    """Import each file whose content differs from the last version imported from it.

    A file version goes live unless the live version was published from the studio; then it
    waits as a draft (``force`` publishes it anyway). A file that fails ``problems`` (lint) is
    imported as a draft and never published. Nothing is ever overwritten."""
    lines = []
    for channel, key in sorted(files.available()):
        source = files.get(channel, key).source
        digest = file_hash(source)
        lines_of = lineage(channel, key)
        last_file = lines_of.last_from_files(session)
        if last_file is not None and last_file.file_hash == digest:
            lines.append(SyncLine(channel, key, "unchanged"))
            continue
        imported = lines_of.add_draft(
            session,
            source,
            origin="file",
            file_hash=digest,
            author=author,
            now=now,
            note="imported from templates/",
        )
        live = published(session, channel, key)
        errors = problems(channel, key, source) if problems else []
        if errors:
            lines.append(
                SyncLine(
                    channel,
                    key,
                    (
                        f"imported version {imported.version} as a draft, NOT published: "
                        + "; ".join(errors)
                    ),
                )
            )
        elif live is None or live.origin == "file" or force:
            publish(session, channel, key, imported.version, author=author, now=now)
            lines.append(
                SyncLine(channel, key, f"imported version {imported.version} and published it")
            )
        else:
            lines.append(
                SyncLine(
                    channel,
                    key,
                    (
                        f"imported version {imported.version} as a draft; version {live.version}, "
                        "published from the studio, stays live (--force publishes the file)"
                    ),
                )
            )
    return lines
