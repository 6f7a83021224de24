"""Where sequences come from, and their versions (issue 15 §1).

The files under ``config/sequences/`` are the shipped definitions. ``nurture sequences sync``
(and ``nurture db upgrade``) imports them into ``sequence_versions``; from then on what is
published there is the program, which marketing edits in the studio without a deploy. Each
version is kept as the YAML a file would hold, so the studio, the files and the CLI share one
validation (nurture.program.sequences) and every problem names its line.

A version's number is the row's, not the file's ``version:`` field: the first import of a file
takes the file's number (enrolments made before sequences were stored name it), later ones
the next free number.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.config.yamlconf import ConfigError, ConfigProblem, parse_yaml
from nurture.db import audit
from nurture.db.models import Channel, SequenceVersion, TemplateState
from nurture.db.versioning import Lineage
from nurture.program.sequences import Catalog, Sequence, check_sequence

Templates = Collection[tuple[Channel, str]]
# The states whose versions enrolments can be on: every version that was ever live.
EVER_LIVE = (TemplateState.PUBLISHED, TemplateState.ARCHIVED)


def lineage(key: str) -> Lineage[SequenceVersion]:
    return Lineage(SequenceVersion, f"sequence {key}", key=key)


def source_name(key: str, version: int | None) -> Path:
    """How problems name a version kept in the database (in place of a file's path)."""
    return Path(f"{key} (draft)" if version is None else f"{key} version {version}")


def parse(source: str, key: str, version: int | None, *, templates: Templates | None) -> Sequence:
    """The sequence a version's YAML describes, numbered as the version; ConfigError naming
    every problem and its line. The key is the sequence's identity and cannot change."""
    document = parse_yaml(source, source_name(key, version))
    sequence = check_sequence(document, templates=templates)
    if sequence.key != key:
        raise ConfigError(
            [
                document.problem(
                    ("key",),
                    f"this is sequence {key!r}; a key cannot change (add a file for a new one)",
                )
            ]
        )
    return sequence if version is None else sequence.model_copy(update={"version": version})


def problems_of(
    source: str, key: str, version: int | None, *, templates: Templates | None
) -> list[ConfigProblem]:
    try:
        parse(source, key, version, templates=templates)
    except ConfigError as error:
        return error.problems
    return []


def to_source(data: object) -> str:
    """YAML for a sequence built in the studio's form: block style, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def published(session: Session, key: str) -> SequenceVersion | None:
    return lineage(key).live(session)


def versions(session: Session, key: str) -> list[SequenceVersion]:
    """Every version, newest first."""
    return lineage(key).history(session)


def get_version(session: Session, key: str, version: int) -> SequenceVersion | None:
    return lineage(key).get(session, version)


def save_draft(
    session: Session, key: str, source: str, *, author: str, now: datetime, note: str | None = None
) -> SequenceVersion:
    """Every save is a new version, valid or not: a half-finished edit is never lost, and
    publishing is what refuses an invalid one."""
    draft = lineage(key).add_draft(session, source, origin="ui", author=author, now=now, note=note)
    audit.record(
        session,
        actor=author,
        action="sequence.draft_saved",
        details={"key": key, "version": draft.version},
    )
    return draft


def publish(
    session: Session,
    key: str,
    version: int,
    *,
    templates: Templates,
    author: str,
    now: datetime,
    reviewed: int | None = None,
    enrolments: str | None = None,
) -> SequenceVersion:
    """Make ``version`` live; ConfigError (nothing changed) while it is invalid. A rollback
    publishes a copy of the older version. ``reviewed``: the live version the publisher saw the
    change preview against; ``enrolments``: what they chose for active enrolments ("keep" or
    "move"), both for the audit trail (moving them is nurture.outbox.version_moves)."""
    lines = lineage(key)
    target = lines.require(session, version)
    parse(target.source, key, version, templates=templates)
    before = lines.live(session)
    live = lines.publish(session, version, author=author, now=now)
    if before is not None and before.id == live.id:
        return live
    _published_here()
    audit.record(
        session,
        actor=author,
        action="sequence.published",
        details={
            "key": key,
            "version": live.version,
            "from_version": version,
            **({"reviewed_against": reviewed} if reviewed is not None else {}),
            **({"enrolments": enrolments} if enrolments is not None else {}),
        },
    )
    return live


def delete_draft(session: Session, key: str, version: int, *, author: str) -> SequenceVersion:
    target = lineage(key).delete_draft(session, version)
    audit.record(
        session,
        actor=author,
        action="sequence.draft_deleted",
        details={"key": key, "version": version},
    )
    return target


@dataclass(frozen=True)
class SyncLine:
    key: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.key}: {self.outcome}"


def file_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def sync(
    session: Session,
    directory: Path,
    *,
    templates: Templates,
    force: bool = False,
    now: datetime,
    author: str = "files",
) -> list[SyncLine]:
    """Import each sequence file whose content differs from the last version imported from it.

    The import goes live unless the live version was published from the studio; then it waits
    as a draft (``force`` publishes it anyway). A file that does not validate is imported as a
    draft, never published. Nothing is ever overwritten."""
    lines = []
    for path in sorted(directory.glob("*.yaml")):
        source = path.read_text(encoding="utf-8")
        try:
            sequence = check_sequence(parse_yaml(source, path), templates=templates)
        except ConfigError as error:
            lines.append(SyncLine(path.stem, f"not imported: {error}"))
            continue
        key = sequence.key
        lines_of = lineage(key)
        digest = file_hash(source)
        last_file = lines_of.last_from_files(session)
        if last_file is not None and last_file.file_hash == digest:
            if force and last_file.state is TemplateState.DRAFT:
                # Imported before, held back by a studio publish: --force is the file's turn.
                publish(
                    session, key, last_file.version, templates=templates, author=author, now=now
                )
                lines.append(SyncLine(key, f"published version {last_file.version}, the file's"))
            else:
                lines.append(SyncLine(key, "unchanged"))
            continue
        imported = lines_of.add_draft(
            session,
            source,
            origin="file",
            file_hash=digest,
            author=author,
            now=now,
            note=f"imported from {path.name}",
            at_least=sequence.version,
        )
        live = lines_of.live(session)
        if live is None or live.origin == "file" or force:
            publish(session, key, imported.version, templates=templates, author=author, now=now)
            lines.append(SyncLine(key, f"imported version {imported.version} and published it"))
        else:
            lines.append(
                SyncLine(
                    key,
                    f"imported version {imported.version} as a draft; version {live.version}, "
                    "published from the studio, stays live (--force publishes the file)",
                )
            )
    return lines


def catalog_of(session: Session, files: Catalog) -> Catalog:
    """The program as published: each sequence's live version (a sequence never imported
    keeps its file's definition) and every version that was once live, for the enrolments
    still on them. Templates were checked when each version was published."""
    live: dict[str, Sequence] = dict(files.by_key)
    earlier: list[Sequence] = []
    rows = session.scalars(
        select(SequenceVersion)
        .where(SequenceVersion.state.in_(EVER_LIVE))
        .order_by(SequenceVersion.key, SequenceVersion.version)
    )
    for row in rows:
        try:
            sequence = parse(row.source, row.key, row.version, templates=None)
        except ConfigError:
            continue  # validated when published; a later rule change must not stop sending
        if row.state is TemplateState.PUBLISHED:
            live[row.key] = sequence
        else:
            earlier.append(sequence)
    return Catalog(list(live.values()), earlier=earlier)


def generation(session: Session) -> tuple[int, int, datetime | None]:
    """Changes with every publish anywhere (a publish adds an ever-live version and moves the
    latest publish time): a cheap test of whether a catalog is stale."""
    row = session.execute(
        select(
            func.count(), func.max(SequenceVersion.id), func.max(SequenceVersion.published_at)
        ).where(SequenceVersion.state.in_(EVER_LIVE))
    ).one()
    return (row[0] or 0, row[1] or 0, row[2])


# How long a process trusts the catalog it read before asking the database whether another
# process published: a publish from the web process reaches a worker's next look within this.
# A publish in this process is seen at once. Asking on every look cost a sign-up a quarter of
# its throughput (docs/benchmarks.md).
RECHECK_SECONDS = 2.0
# Bumped by every publish in this process, so its own next look re-reads at once.
_publishes_here = itertools.count()
_last_publish_here = 0


def _published_here() -> None:
    global _last_publish_here
    _last_publish_here = next(_publishes_here) + 1


class SequenceSource:
    """The catalog as published now, for every process: what the studio publishes reaches the
    next enrolment without a restart. Re-read only when a publish happened since the last look
    (a small query tells, asked at most every RECHECK_SECONDS unless this process published)."""

    def __init__(
        self,
        read_sessions: sessionmaker[Session],
        files: Catalog,
        *,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        # Read-only sessions: on SQLite they take no write lock, so a look from inside another
        # transaction (a handler that writes) does not wait for that transaction's own lock.
        self.read_sessions = read_sessions
        self.files = files
        self.recheck = recheck
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, datetime | None], Catalog] | None = None
        self._checked: tuple[float, int] = (-math.inf, 0)  # when asked, and the local mark then

    def current(self, session: Session | None = None) -> Catalog:
        """The published catalog. Pass the caller's session inside a transaction that may have
        published: it then sees its own publish, read exactly. Only what was read outside one
        (committed) is cached, so a publish rolled back never lingers."""
        if session is not None:
            return self._read(session, keep=False)
        asked_at, mark = self._checked
        cached = self._cached
        if (
            cached is not None
            and mark == _last_publish_here
            and time.monotonic() - asked_at < self.recheck
        ):
            return cached[1]
        mark = _last_publish_here  # before reading: a publish meanwhile makes the next look ask
        with self.read_sessions() as own:
            catalog = self._read(own, keep=True)
        self._checked = (time.monotonic(), mark)
        return catalog

    def _read(self, session: Session, *, keep: bool) -> Catalog:
        seen = generation(session)
        cached = self._cached
        if cached is not None and cached[0] == seen:
            return cached[1]
        catalog = catalog_of(session, self.files)
        if keep:
            with self._lock:
                self._cached = (seen, catalog)
        return catalog
