"""A message's life as data, and the one guarded move that writes ``messages.status``.

DESIGN.md §4 draws the diagram; :data:`ARROWS` is that diagram as a table, each arrow named.
Every change of a row's status goes through :func:`move` (or :func:`move_returning`): one
conditional UPDATE ``WHERE status IN (<the states the caller names>)``, so a row that someone
else moved meanwhile (a second delivery of a task, the reaper, a STOP, a late report) is left
alone and the caller learns it from the count. Asking for a move the table does not allow is a
programming error, raised before anything is written. A row is born in one of the states
named here (:func:`planned`, :data:`REPLIED`); no other module spells a status it writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import BindParameter, ColumnElement, Row, Table, bindparam, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.expression import ClauseElement

from nurture.db.models import Message, MessageStatus

S = MessageStatus
MESSAGES: Table = Message.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Arrow:
    """One named arrow of the diagram: rows in any of ``sources`` may move to ``target``."""

    name: str
    sources: frozenset[MessageStatus]
    target: MessageStatus


def _arrow(name: str, sources: Collection[MessageStatus], target: MessageStatus) -> Arrow:
    return Arrow(name, frozenset(sources), target)


# After the provider call the row is `sending`, or `unknown` when the reaper gave up on a slow
# send first: a definite outcome beats that guess, so both take the outcome arrows.
IN_FLIGHT = (S.SENDING, S.UNKNOWN)
# Where a provider's report may find a row and still move it; never from a final report's state.
REPORTABLE = (S.SENDING, S.SENT, S.UNKNOWN)
PENDING = (S.SCHEDULED, S.QUEUED)  # not yet handed to a provider: may still be called off

ARROWS: tuple[Arrow, ...] = (
    _arrow("claim", [S.SCHEDULED], S.QUEUED),
    _arrow("stale queued: re-enqueue", [S.QUEUED], S.QUEUED),  # its task was lost
    _arrow("start", [S.QUEUED], S.SENDING),
    _arrow("gate says later", [S.QUEUED], S.SCHEDULED),  # quiet hours, cap, pause, its turn
    _arrow("gate says never", [S.QUEUED], S.SKIPPED),  # no consent, exited, past not_after
    _arrow("render error", [S.QUEUED], S.FAILED),  # the template fails that one message
    _arrow("exit / opt-out / reschedule", PENDING, S.CANCELLED),
    _arrow("no longer needed", PENDING, S.SKIPPED),  # the consult is already confirmed
    _arrow("ok", IN_FLIGHT, S.SENT),
    _arrow("transient error", IN_FLIGHT, S.SCHEDULED),  # attempts+1, backoff
    _arrow("permanent error", IN_FLIGHT, S.FAILED),
    _arrow("stale (crash)", [S.SENDING], S.UNKNOWN),  # it may have left: never resent by itself
    _arrow("no answer", IN_FLIGHT, S.UNKNOWN),  # a timeout: the provider may have it
    _arrow("callback: the provider has it", [S.UNKNOWN], S.SENT),
    _arrow("callback: delivered", REPORTABLE, S.DELIVERED),
    _arrow("callback: undelivered", REPORTABLE, S.UNDELIVERED),
    _arrow("callback: failed", REPORTABLE, S.FAILED),
    _arrow("callback: try again", REPORTABLE, S.SCHEDULED),  # Twilio says retrying may work
    _arrow("ops: mark sent", [S.UNKNOWN], S.SENT),  # also the reconciler finding it
    _arrow("ops: resend", [S.UNKNOWN], S.SCHEDULED),  # also the reconciler not finding it
    _arrow("ops: retry", [S.FAILED, S.UNDELIVERED], S.SCHEDULED),
    _arrow("ops: skip overdue", [S.SCHEDULED], S.SKIPPED),  # a pause ended with "skip"
    _arrow("staff: cancel", PENDING, S.CANCELLED),  # the lead page: this one message, not sent
    _arrow("staff: send now", [S.SCHEDULED], S.SCHEDULED),  # due now; the claim and gates follow
    # A publish moved the enrolment to a new version, where this step changed or went; the
    # replacement is planned only when this move happened (never for a row already queued).
    _arrow("version move: replaced", [S.SCHEDULED], S.CANCELLED),
)


def _allowed(arrows: Sequence[Arrow]) -> Mapping[MessageStatus, frozenset[MessageStatus]]:
    table: dict[MessageStatus, set[MessageStatus]] = {state: set() for state in MessageStatus}
    for arrow in arrows:
        for source in arrow.sources:
            table[source].add(arrow.target)
    return {state: frozenset(targets) for state, targets in table.items()}


# from-state → the states a row may move to from it. `delivered`, `skipped` and `cancelled`
# lead nowhere: a report never moves a row backwards (delivered never becomes sent again, and
# an `undelivered` after `delivered` is only recorded as a delivery event).
TRANSITIONS: Mapping[MessageStatus, frozenset[MessageStatus]] = _allowed(ARROWS)
TERMINAL = frozenset(state for state, targets in TRANSITIONS.items() if not targets)

# The states a row is born in (an INSERT, not a move).
PLANNED = S.SCHEDULED  # a planned step or a staff alert, waiting for its due_at
REPLIED = S.SENT  # a TwiML reply: it left in the webhook's own answer
INITIAL = frozenset({S.SCHEDULED, S.SKIPPED, S.SENT})


def planned(skipped_reason: str | None) -> MessageStatus:
    """A planned step's first state: skipped at once when planning already knows why."""
    return S.SKIPPED if skipped_reason else PLANNED


class IllegalMoveError(Exception):
    """A caller asked for a move the transition table does not allow (a bug, not bad input)."""


def check(sources: Collection[MessageStatus], target: MessageStatus) -> None:
    """Raise :class:`IllegalMoveError` unless every source may move to ``target``."""
    if not sources:
        raise IllegalMoveError(f"a move to {target.value} must name the states it moves from")
    wrong = sorted(source.value for source in sources if target not in TRANSITIONS[source])
    if wrong:
        raise IllegalMoveError(f"no arrow from {', '.join(wrong)} to {target.value} (DESIGN.md §4)")


Rows: TypeAlias = Message | int | Collection[int] | ColumnElement[bool]


def move(
    session: Session,
    rows: Rows,
    *,
    from_: Collection[MessageStatus],
    to: MessageStatus,
    now: datetime,
    **values: Any,
) -> int:
    """Move ``rows`` that are still in one of ``from_`` to ``to``; return how many moved.

    ``rows`` is one row (a loaded :class:`Message`, kept in step with what was written, or an
    id), several ids, or a WHERE clause. ``status_at`` becomes ``now``; ``values`` are the other
    columns to set (a column expression such as ``attempts + 1`` is allowed). The caller
    owns the transaction.
    """
    result = session.execute(_statement(rows, from_, to, now, values))
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count and isinstance(rows, Message):
        _keep_in_step(rows, to, now, values)
    return count


def move_returning(
    session: Session,
    rows: Rows,
    *,
    from_: Collection[MessageStatus],
    to: MessageStatus,
    now: datetime,
    returning: Sequence[ColumnElement[Any]],
    **values: Any,
) -> list[Row[Any]]:
    """:func:`move`, answering with ``returning`` of each row that moved (a claim needs them)."""
    statement = _statement(rows, from_, to, now, values).returning(*returning)
    return list(session.execute(statement).all())


@dataclass(frozen=True)
class Change:
    """One row's part in :func:`move_all`: its own moment and columns, and the attempt it must
    still be on (None: any)."""

    message: Message
    now: datetime
    values: Mapping[str, Any]
    attempt: int | None = None


def move_all(
    session: Session,
    changes: Sequence[Change],
    *,
    from_: Collection[MessageStatus],
    to: MessageStatus,
    **shared: Any,
) -> bool:
    """Move every row of ``changes`` that is still in one of ``from_`` to ``to`` in one round
    trip (one statement, executed for each row); True when every row moved.

    The same guarded UPDATE as :func:`move`, per row, with each row's own ``values`` (every
    change must name the same columns) and the ``shared`` ones (a column expression such as
    ``attempts + 1`` is allowed there). False means some row had been moved by someone else
    meanwhile, and the count cannot say which: the caller rolls back and moves the rows one at
    a time with :func:`move`. The loaded rows are kept in step only when all moved."""
    if not changes:
        return True
    names = set(changes[0].values)
    if any(set(change.values) != names for change in changes):
        raise IllegalMoveError("every change of one move_all must set the same columns")
    guarded = changes[0].attempt is not None
    if any((change.attempt is not None) != guarded for change in changes):
        raise IllegalMoveError("either every change of one move_all names its attempt, or none")
    columns = MESSAGES.c
    per_row = {name: bindparam(f"v_{name}", type_=columns[name].type) for name in names}
    statement = _statement(
        columns.id == bindparam("v_id", type_=columns.id.type),
        from_,
        to,
        bindparam("v_status_at", type_=columns.status_at.type),
        {**shared, **per_row},
        each_row=True,
    )
    if guarded:
        statement = statement.where(
            columns.attempts == bindparam("v_attempt", type_=columns.attempts.type)
        )
    rows = [
        {
            "v_id": change.message.id,
            "v_status_at": change.now,
            **({"v_attempt": change.attempt} if guarded else {}),
            **{f"v_{name}": value for name, value in change.values.items()},
        }
        for change in changes
    ]
    result = session.execute(statement, rows)
    if int(result.rowcount) != len(changes):  # type: ignore[attr-defined]
        return False
    for change in changes:
        _keep_in_step(change.message, to, change.now, {**shared, **change.values})
    return True


def _statement(
    rows: Rows,
    sources: Collection[MessageStatus],
    target: MessageStatus,
    now: datetime | BindParameter[Any],
    values: dict[str, Any],
    *,
    each_row: bool = False,
) -> Any:
    check(sources, target)
    if "status" in values or "status_at" in values:
        raise IllegalMoveError("status and status_at come from `to` and `now`, not from values")
    status_is = (
        # Spelt out: an executemany cannot expand the list of an `IN (…)`.
        or_(*(MESSAGES.c.status == source for source in sorted(sources)))
        if each_row
        else MESSAGES.c.status.in_(tuple(sources))
    )
    return (
        update(MESSAGES)
        .where(_which(rows), status_is)
        .values(status=target, status_at=now, **values)
        # Rows held in the session are not touched behind the caller's back (see _keep_in_step).
        .execution_options(synchronize_session=False)
    )


def _which(rows: Rows) -> ColumnElement[bool]:
    if isinstance(rows, Message):
        return MESSAGES.c.id == rows.id
    if isinstance(rows, int):
        return MESSAGES.c.id == rows
    if isinstance(rows, ColumnElement):
        return rows
    ids = list(rows)
    if not all(isinstance(one, int) for one in ids):
        raise TypeError("rows: a Message, an id, a collection of ids or a WHERE clause")
    return MESSAGES.c.id.in_(ids)


def _keep_in_step(
    message: Message, status: MessageStatus, now: datetime, values: dict[str, Any]
) -> None:
    # The loaded object says what the row now says, without marking it dirty (no second
    # UPDATE at the next flush). A value computed by the database is left for a refresh.
    set_committed_value(message, "status", status)
    set_committed_value(message, "status_at", now)
    for name, value in values.items():
        if not isinstance(value, ClauseElement):
            set_committed_value(message, name, value)
