"""Every disclosure version ever shown, and the evidence a ticked box leaves (rules 1 and 22).

``config/disclosures.yaml`` holds the wording shown beside each consent box now. Each version
of it is recorded in ``disclosure_versions`` the first time a process starts with it, and is
never changed afterwards: years later, the exact words a person agreed to can still be shown.
Wording in the file that differs from what is recorded for its version is an edit in place,
refused at start-up (:class:`DisclosureEditedError`); new wording needs a new version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nurture.config.clinic import Disclosures
from nurture.db.models import DisclosureVersion

# The boxes of the sign-up form, in the order the form shows them.
BOXES = ("email_marketing", "sms_care", "sms_marketing")
DISCLOSURE_VERSIONS: Table = DisclosureVersion.__table__  # type: ignore[assignment]

# Rule 22: wording that tells people texts are not encrypted. A care grant given beside such
# wording is the person's informed choice of plain texts (their ``unencrypted_ack``).
_WARNS_UNENCRYPTED = re.compile(r"\b(?:not|never)\s+encrypted\b|\bunencrypted\b", re.IGNORECASE)


def warns_unencrypted(wording: str) -> bool:
    return _WARNS_UNENCRYPTED.search(wording) is not None


class DisclosureEditedError(Exception):
    """The file's wording for a version differs from what people were already shown under it."""

    def __init__(self, version: str, boxes: list[str], recorded_at: datetime) -> None:
        self.version = version
        self.boxes = boxes
        names = ", ".join(boxes)
        super().__init__(
            f"version {version!r}: the wording of {names} differs from the wording recorded "
            f"for this version on {recorded_at:%Y-%m-%d}, which people may already have agreed "
            f"to; wording is never edited in place: give the new wording a new version "
            f"(change `version:`), and the old one stays on record"
        )


def _row_values(disclosures: Disclosures, now: datetime) -> dict[str, Any]:
    return {
        "version": disclosures.version,
        **{box: getattr(disclosures, box) for box in BOXES},
        "first_recorded_at": now,
    }


# INSERT ... ON CONFLICT DO NOTHING RETURNING: the version back only when this call added it.
_INSERT_IF_NEW = {
    "postgresql": postgresql.insert(DISCLOSURE_VERSIONS)
    .on_conflict_do_nothing()
    .returning(DISCLOSURE_VERSIONS.c.version),
    "sqlite": sqlite.insert(DISCLOSURE_VERSIONS)
    .on_conflict_do_nothing()
    .returning(DISCLOSURE_VERSIONS.c.version),
}


def _as_disclosures(row: DisclosureVersion) -> Disclosures:
    return Disclosures.model_validate(
        {"version": row.version, **{box: getattr(row, box) for box in BOXES}}
    )


def record_current(session: Session, current: Disclosures, *, now: datetime) -> bool:
    """Record the file's version if it is new; True when it was. Raises DisclosureEditedError
    when the version is on record with other wording. Several processes starting at once
    record it once (the insert skips a version already there)."""
    statement = _INSERT_IF_NEW[session.get_bind().dialect.name]
    inserted = session.scalars(statement, _row_values(current, now)).first() is not None
    row = session.get_one(DisclosureVersion, current.version, populate_existing=True)
    edited = [box for box in BOXES if getattr(row, box) != getattr(current, box)]
    if edited:
        raise DisclosureEditedError(current.version, edited, row.first_recorded_at)
    return inserted


def find(session: Session, version: str, *, current: Disclosures) -> Disclosures | None:
    """The wording of ``version``: the file's, or one on record from before."""
    if version == current.version:
        return current
    row = session.get(DisclosureVersion, version)
    return None if row is None else _as_disclosures(row)


def known_versions(session: Session, *, current: Disclosures) -> list[str]:
    """Every version a consent may name, the file's first, then the others newest first."""
    recorded = session.scalars(
        select(DisclosureVersion.version).order_by(
            DisclosureVersion.first_recorded_at.desc(), DisclosureVersion.version.desc()
        )
    )
    return [current.version, *(v for v in recorded if v != current.version)]


@dataclass(frozen=True)
class Shown:
    """What the server itself knows was in front of the person when they ticked a box: the
    wording of one disclosure version, the seller it names, and whether the boxes started
    unticked (known when nurture drew them; None when the clinic's own system did)."""

    wording: Disclosures
    seller: str
    boxes_started_unticked: bool | None


def box_evidence(shown: Shown, box: str, *, now: datetime) -> dict[str, Any]:
    """The evidence of one ticked box: its own wording (never the other boxes'), its version,
    the seller, how the box started, and for texts about care the unencrypted acknowledgement
    when the wording warned of it (rule 22)."""
    wording: str = getattr(shown.wording, box)
    evidence: dict[str, Any] = {
        "checkbox": box,
        "disclosure_version": shown.wording.version,
        "disclosure_text": wording,
        "seller": shown.seller,
        "box_started_unticked": shown.boxes_started_unticked,
    }
    if box == "sms_care" and warns_unencrypted(wording):
        evidence["unencrypted_ack"] = {
            "acknowledged_at": now.isoformat(),
            "channel": "sms",
            "wording": wording,
        }
    return evidence
