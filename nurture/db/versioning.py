"""The life of a versioned thing, templates and sequences alike: draft → published → archived,
or a draft deleted. One home for the rules both follow (issue 15 §1).

History is linear and nothing is overwritten: every save is a new version; publishing an older
version (a rollback) publishes a copy of it as a new version; a deleted draft keeps its row, so
its number is never handed to another text and the audit trail stays true.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from nurture.db.models import SequenceVersion, TemplateState, TemplateVersion

Row = TypeVar("Row", TemplateVersion, SequenceVersion)


class VersionStateError(ValueError):
    """The version is in the wrong state for this: publishing a deleted draft, deleting a
    published version."""


class Lineage(Generic[Row]):
    """Every version of one template (channel and key) or one sequence (key)."""

    def __init__(self, model: type[Row], label: str, **identity: Any) -> None:
        self.model: type[Row] = model
        self.label = label  # how messages name it: "sms/booking-nudge", "consult-nurture"
        self.identity: Mapping[str, Any] = identity

    def _where(self) -> list[ColumnElement[bool]]:
        return [getattr(self.model, name) == value for name, value in self.identity.items()]

    def live(self, session: Session) -> Row | None:
        return session.scalars(
            select(self.model).where(*self._where(), self.model.state == TemplateState.PUBLISHED)
        ).one_or_none()

    def get(self, session: Session, version: int) -> Row | None:
        return session.scalars(
            select(self.model).where(*self._where(), self.model.version == version)
        ).one_or_none()

    def require(self, session: Session, version: int) -> Row:
        row = self.get(session, version)
        if row is None:
            raise LookupError(f"{self.label} has no version {version}")
        return row

    def history(self, session: Session) -> list[Row]:
        """Every version, newest first."""
        return list(
            session.scalars(
                select(self.model).where(*self._where()).order_by(self.model.version.desc())
            )
        )

    def last_from_files(self, session: Session) -> Row | None:
        return session.scalars(
            select(self.model)
            .where(*self._where(), self.model.origin == "file")
            .order_by(self.model.version.desc())
            .limit(1)
        ).one_or_none()

    def next_version(self, session: Session, *, at_least: int = 1) -> int:
        latest = session.scalar(select(func.max(self.model.version)).where(*self._where()))
        return max((latest or 0) + 1, at_least)

    def add_draft(
        self,
        session: Session,
        source: str,
        *,
        origin: str,
        author: str,
        now: datetime,
        note: str | None = None,
        file_hash: str | None = None,
        at_least: int = 1,
    ) -> Row:
        draft: Row = self.model(
            **self.identity,
            version=self.next_version(session, at_least=at_least),
            state=TemplateState.DRAFT,
            source=source,
            origin=origin,
            file_hash=file_hash,
            author=author,
            note=note,
            created_at=now,
        )
        session.add(draft)
        session.flush()
        return draft

    def publish(self, session: Session, version: int, *, author: str, now: datetime) -> Row:
        """Make ``version`` the live one and return the row that now is: the draft itself,
        or for an older version a new copy of it. Publishing the live version changes nothing.
        Checks (lint, validation) are the caller's: this only moves states."""
        target = self.require(session, version)
        if target.state is TemplateState.DELETED:
            raise VersionStateError(
                f"{self.label} version {version} is a deleted draft: it cannot be published"
            )
        current = self.live(session)
        if current is not None and current.id == target.id:
            return target
        if current is not None:
            current.state = TemplateState.ARCHIVED
            session.flush()  # one published version at a time, even mid-transaction
        if target.state is not TemplateState.DRAFT:
            target = self.add_draft(
                session,
                target.source,
                origin="ui",
                author=author,
                now=now,
                note=f"rollback to version {version}",
            )
        target.state = TemplateState.PUBLISHED
        target.published_at = now
        session.flush()
        return target

    def delete_draft(self, session: Session, version: int) -> Row:
        """Mark a draft deleted. Only a draft: a version that was ever live is part of what
        leads were sent (messages name their versions), so it is never deleted."""
        target = self.require(session, version)
        if target.state is not TemplateState.DRAFT:
            raise VersionStateError(
                f"{self.label} version {version} is {target.state.value}: "
                "only a draft that was never published can be deleted"
            )
        target.state = TemplateState.DELETED
        session.flush()
        return target
