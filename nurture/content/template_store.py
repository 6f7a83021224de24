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

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.content.rendering import EmailLayouts
from nurture.db import audit
from nurture.db.models import Channel, TemplateState, TemplateVersion

SUFFIXES = {Channel.EMAIL: ".md.j2", Channel.SMS: ".txt.j2"}


class TemplateStateError(ValueError):
    """The version is in the wrong state for this: publishing a deleted draft, deleting a
    published version."""


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


def published(session: Session, channel: Channel, key: str) -> TemplateVersion | None:
    return session.scalars(
        select(TemplateVersion).where(
            TemplateVersion.channel == channel,
            TemplateVersion.key == key,
            TemplateVersion.state == TemplateState.PUBLISHED,
        )
    ).one_or_none()


def versions(session: Session, channel: Channel, key: str) -> list[TemplateVersion]:
    """Every version, newest first."""
    return list(
        session.scalars(
            select(TemplateVersion)
            .where(TemplateVersion.channel == channel, TemplateVersion.key == key)
            .order_by(TemplateVersion.version.desc())
        )
    )


def get_version(
    session: Session, channel: Channel, key: str, version: int
) -> TemplateVersion | None:
    return session.scalars(
        select(TemplateVersion).where(
            TemplateVersion.channel == channel,
            TemplateVersion.key == key,
            TemplateVersion.version == version,
        )
    ).one_or_none()


def _next_version(session: Session, channel: Channel, key: str) -> int:
    latest = session.scalar(
        select(func.max(TemplateVersion.version)).where(
            TemplateVersion.channel == channel, TemplateVersion.key == key
        )
    )
    return (latest or 0) + 1


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
    draft = TemplateVersion(
        channel=channel,
        key=key,
        version=_next_version(session, channel, key),
        state=TemplateState.DRAFT,
        source=source,
        origin="ui",
        author=author,
        note=note,
        created_at=now,
    )
    session.add(draft)
    session.flush()
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
    """Make ``version`` the live one. A draft is published as it is; publishing an older
    version (a rollback) publishes a copy of it as a new version, so history stays linear.
    Lint is the caller's job (``nurture.content.lint``): this only moves states. ``reviewed``
    names the live version the publisher saw the diff against, for the audit trail."""
    target = get_version(session, channel, key, version)
    if target is None:
        raise LookupError(f"{channel.value}/{key} has no version {version}")
    if target.state is TemplateState.DELETED:
        raise TemplateStateError(
            f"{channel.value}/{key} version {version} is a deleted draft: it cannot be published"
        )
    current = published(session, channel, key)
    if current is not None and current.id == target.id:
        return target
    if current is not None:
        current.state = TemplateState.ARCHIVED
        session.flush()  # one published version per template, even mid-transaction
    if target.state is not TemplateState.DRAFT:
        target = TemplateVersion(
            channel=channel,
            key=key,
            version=_next_version(session, channel, key),
            state=TemplateState.DRAFT,
            source=target.source,
            origin="ui",
            author=author,
            note=f"rollback to version {version}",
            created_at=now,
        )
        session.add(target)
    target.state = TemplateState.PUBLISHED
    target.published_at = now
    session.flush()
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
    """Throw a draft away. Only a draft: a version that was ever live is part of what leads
    were sent (messages name their template version), so it is never deleted.

    The row stays, marked deleted, rather than being DELETEd: version numbers come from the
    highest one, so a removed newest draft would hand its number to the next save and the
    audit trail ("draft 7 saved", "draft 7 deleted") would then describe two different texts.
    The history shows it struck out instead."""
    target = get_version(session, channel, key, version)
    if target is None:
        raise LookupError(f"{channel.value}/{key} has no version {version}")
    if target.state is not TemplateState.DRAFT:
        raise TemplateStateError(
            f"{channel.value}/{key} version {version} is {target.state.value}: "
            "only a draft that was never published can be deleted"
        )
    target.state = TemplateState.DELETED
    session.flush()
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
        last_file = session.scalars(
            select(TemplateVersion)
            .where(
                TemplateVersion.channel == channel,
                TemplateVersion.key == key,
                TemplateVersion.origin == "file",
            )
            .order_by(TemplateVersion.version.desc())
            .limit(1)
        ).one_or_none()
        if last_file is not None and last_file.file_hash == digest:
            lines.append(SyncLine(channel, key, "unchanged"))
            continue
        imported = TemplateVersion(
            channel=channel,
            key=key,
            version=_next_version(session, channel, key),
            state=TemplateState.DRAFT,
            source=source,
            origin="file",
            file_hash=digest,
            author=author,
            note="imported from templates/",
            created_at=now,
        )
        session.add(imported)
        session.flush()
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
