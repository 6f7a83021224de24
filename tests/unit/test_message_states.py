"""A message's states as data (DESIGN.md §4), the one guarded move, and a walk of the code that
fails if anything but that module writes a message's status."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from nurture.db.models import Message
from nurture.db.models import MessageStatus as S
from nurture.outbox import states
from nurture.outbox.states import TRANSITIONS, IllegalMoveError

NURTURE = Path(__file__).resolve().parents[2] / "nurture"
# The one module allowed to write a status; when it moves (nurture/outbox/states.py) only this
# line changes.
STATES_MODULE = "nurture.outbox.states"
NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)

# The diagram of DESIGN.md §4, copied by hand (not from the code): each arrow must be allowed.
DIAGRAM = {
    (S.SCHEDULED, S.QUEUED),  # claim
    (S.QUEUED, S.QUEUED),  # stale queued: enqueued again
    (S.QUEUED, S.SENDING),  # start
    (S.SENDING, S.SENT),  # ok
    (S.SENT, S.DELIVERED),  # callback
    (S.SENT, S.UNDELIVERED),  # callback
    (S.SENDING, S.SCHEDULED),  # transient error
    (S.SENDING, S.FAILED),  # permanent error
    (S.SENDING, S.UNKNOWN),  # stale (crash)
    (S.UNKNOWN, S.SENT),  # ops: mark sent
    (S.UNKNOWN, S.SCHEDULED),  # ops: resend
    (S.QUEUED, S.SCHEDULED),  # gate says later
    (S.QUEUED, S.SKIPPED),  # gate says never
    (S.SCHEDULED, S.CANCELLED),  # exit / opt-out / reschedule
    (S.FAILED, S.SCHEDULED),  # ops: retry
    (S.UNDELIVERED, S.SCHEDULED),  # ops: retry
    (S.SCHEDULED, S.SKIPPED),  # ops: skip overdue
}

# Moves that must never happen, whoever asks.
NEVER = [
    (S.DELIVERED, S.SENT),  # a late "sent" report
    (S.DELIVERED, S.UNDELIVERED),  # a contradicting report after delivery
    (S.DELIVERED, S.FAILED),
    (S.UNDELIVERED, S.DELIVERED),
    (S.SENT, S.SENDING),
    (S.SENT, S.QUEUED),
    (S.SENDING, S.QUEUED),  # a send in flight is never handed to a second task
    (S.UNKNOWN, S.QUEUED),  # an unknown row is never resent without passing the schedule
    (S.UNKNOWN, S.SENDING),
    (S.SCHEDULED, S.SENDING),  # no send without a claim
    (S.SCHEDULED, S.SENT),
    (S.SENDING, S.CANCELLED),  # a STOP cannot pretend a text in flight did not leave
    (S.CANCELLED, S.SCHEDULED),
    (S.SKIPPED, S.QUEUED),
]


def test_every_arrow_of_the_diagram_is_allowed() -> None:
    missing = sorted(f"{a} → {b}" for a, b in DIAGRAM if b not in TRANSITIONS[a])
    assert missing == []


@pytest.mark.parametrize(("source", "target"), NEVER)
def test_a_move_backwards_or_around_the_send_is_refused(source: S, target: S) -> None:
    assert target not in TRANSITIONS[source]
    with pytest.raises(IllegalMoveError):
        states.check([source], target)


def test_delivered_skipped_and_cancelled_lead_nowhere() -> None:
    assert {S.DELIVERED, S.SKIPPED, S.CANCELLED} == states.TERMINAL


def test_every_state_is_reachable_and_every_row_can_end() -> None:
    def reachable(start: set[S]) -> set[S]:
        seen, todo = set(start), list(start)
        while todo:
            for target in TRANSITIONS[todo.pop()] - seen:
                seen.add(target)
                todo.append(target)
        return seen

    assert reachable(set(states.INITIAL)) == set(S)
    for state in S:
        assert reachable({state}) & states.TERMINAL, state


def test_each_arrow_is_named_and_the_names_are_the_designs() -> None:
    names = {arrow.name for arrow in states.ARROWS}
    assert len(names) == len(states.ARROWS)
    for name in ["claim", "start", "ok", "transient error", "permanent error", "stale (crash)"]:
        assert name in names
    assert {"ops: mark sent", "ops: resend", "ops: retry", "ops: skip overdue"} <= names


def test_a_planned_row_starts_scheduled_or_skipped() -> None:
    assert states.planned(None) is S.SCHEDULED
    assert states.planned("past its window") is S.SKIPPED
    assert states.REPLIED is S.SENT


class _Result:
    rowcount = 1


class RecordingSession:
    """Stands in for a Session: keeps what would have been executed."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    def execute(self, statement: Any) -> _Result:
        self.statements.append(statement)
        return _Result()


def sql(statement: Any) -> tuple[str, dict[str, Any]]:
    compiled = statement.compile(
        dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return " ".join(str(compiled).split()), dict(compiled.params)


def test_move_is_one_conditional_update_from_the_named_states() -> None:
    session = RecordingSession()
    moved = states.move(
        session,  # type: ignore[arg-type]
        [7, 8],
        from_=(S.SENDING, S.UNKNOWN),
        to=S.FAILED,
        now=NOW,
        last_error="no",
    )
    assert moved == 1
    [statement] = session.statements
    text, params = sql(statement)
    assert text.startswith("UPDATE messages SET status=?, status_at=?, last_error=?")
    assert "WHERE messages.id IN (?, ?) AND messages.status IN (?, ?)" in text
    assert params["status"] is S.FAILED
    assert params["status_at"] == NOW
    assert {params["status_1_1"], params["status_1_2"]} == {S.SENDING, S.UNKNOWN}


def test_a_move_the_table_does_not_allow_raises_before_anything_is_written() -> None:
    session = RecordingSession()
    with pytest.raises(IllegalMoveError, match="delivered to sent"):
        states.move(
            session,  # type: ignore[arg-type]
            1,
            from_=(S.UNKNOWN, S.DELIVERED),
            to=S.SENT,
            now=NOW,
        )
    with pytest.raises(IllegalMoveError):
        states.move(session, 1, from_=(), to=S.SENT, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(IllegalMoveError):
        states.move(
            session,  # type: ignore[arg-type]
            1,
            from_=(S.UNKNOWN,),
            to=S.SENT,
            now=NOW,
            status=S.DELIVERED,
        )
    assert session.statements == []


def test_a_loaded_row_says_what_was_written() -> None:
    message = Message(id=3, status=S.UNKNOWN, status_at=NOW, provider_id=None)
    later = NOW.replace(hour=19)
    states.move(
        RecordingSession(),  # type: ignore[arg-type]
        message,
        from_=(S.UNKNOWN,),
        to=S.SENT,
        now=later,
        provider_id="SM1",
    )
    assert (message.status, message.status_at, message.provider_id) == (S.SENT, later, "SM1")


# --- the walk: nothing but the states module writes a message's status ---------------------

MESSAGE_TABLES = {"Message", "MESSAGES", "messages"}
OTHER_STATUS_ENUMS = {"EnrollmentStatus"}  # other tables' status columns, written freely
OTHER_ROWS = ("enrollment", "event")  # objects named like these are not messages


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.add(child.value)
    return found


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


class StatusWrites(ast.NodeVisitor):
    """Finds writes of a message's status in one module: (line, what) for each."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.states_names: set[str] = set()  # local names bound to the states module or its parts

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == STATES_MODULE:
                self.states_names.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module == STATES_MODULE or f"{node.module}.{alias.name}" == STATES_MODULE:
                self.states_names.add(alias.asname or alias.name)

    def _from_states(self, value: ast.expr) -> bool:
        root = _root(value)
        return isinstance(root, ast.Name) and root.id in self.states_names

    def _targets(self, targets: list[ast.expr], value: ast.expr | None, line: int) -> None:
        for target in targets:
            if isinstance(target, (ast.Tuple, ast.List)):
                self._targets(list(target.elts), value, line)
            elif isinstance(target, ast.Attribute) and target.attr == "status":
                self._assignment(target.value, value, line)

    def _assignment(self, owner: ast.expr, value: ast.expr | None, line: int) -> None:
        owner_text = ast.unparse(owner).lower()
        if any(other in owner_text for other in OTHER_ROWS):
            return
        if value is not None and _names(value) & OTHER_STATUS_ENUMS:
            return
        self.found.append((line, f"assigns {ast.unparse(owner)}.status"))

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node.targets, node.value, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets([node.target], node.value, node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets([node.target], node.value, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        status_values = [k.value for k in node.keywords if k.arg == "status"]
        for arg in node.args:
            if isinstance(arg, ast.Dict):
                status_values += [
                    v
                    for k, v in zip(arg.keys, arg.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == "status"
                ]
        if isinstance(func, ast.Name) and func.id == "Message":
            for value in status_values:
                if not self._from_states(value):
                    self.found.append((value.lineno, "Message(status=...) not from message_states"))
        elif isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) == 3:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value == "status":
                self._assignment(node.args[0], node.args[2], node.lineno)
        elif isinstance(func, ast.Attribute) and func.attr in {"values", "update"}:
            on_messages = bool(_names(func.value) & MESSAGE_TABLES)
            for value in status_values:
                if on_messages or "MessageStatus" in _names(value):
                    self.found.append((value.lineno, f".{func.attr}(status=...) on messages"))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            sql_text = " ".join(node.value.lower().split())
            if ("update messages" in sql_text and "status" in sql_text) or (
                "insert into messages" in sql_text
            ):
                self.found.append((node.lineno, "raw SQL writes messages"))


def status_writes(source: str) -> list[tuple[int, str]]:
    walker = StatusWrites()
    walker.visit(ast.parse(source))
    return walker.found


def modules() -> Iterator[Path]:
    states_file = NURTURE.parent / (STATES_MODULE.replace(".", "/") + ".py")
    for path in sorted(NURTURE.rglob("*.py")):
        if path != states_file:
            yield path


def test_only_the_states_module_writes_a_message_status() -> None:
    offenders = [
        f"{path.relative_to(NURTURE.parent)}:{line}: {what}"
        for path in modules()
        for line, what in status_writes(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use nurture.outbox.states.move():\n" + "\n".join(offenders)


def test_the_walk_sees_every_kind_of_write() -> None:
    """The walk itself can fail: each way of writing a status, as the old code wrote them."""
    source = """
from nurture.outbox import states
from nurture.outbox.states import PLANNED
message.status = MessageStatus.SENT
message.status, message.due_at = MessageStatus.SCHEDULED, now
row.status = chosen
setattr(message, "status", MessageStatus.SENT)
session.execute(update(Message).where(Message.id == 1).values(status=MessageStatus.QUEUED))
session.execute(update(MESSAGES).values(status=target, status_at=now))
statement.values(status=MessageStatus.CANCELLED)
session.query(Message).update({"status": "sent"})
Message(lead_id=lead.id, status=MessageStatus.SENT)
connection.exec_driver_sql("UPDATE messages SET status = 'sent'")
"""
    assert [line for line, _ in status_writes(source)] == list(range(4, 14))
    allowed = """
from nurture.outbox import states
from nurture.outbox.states import PLANNED
enrollment.status = EnrollmentStatus.EXITED
event.status = status
session.execute(update(Enrollment).values(status=EnrollmentStatus.COMPLETED))
DeliveryEvent(status=status)
Message(status=states.planned(reason))
Message(status=PLANNED)
states.move(session, 1, from_=(MessageStatus.UNKNOWN,), to=MessageStatus.SENT, now=now)
select(Message.status).where(Message.status == MessageStatus.SENT)
"""
    assert status_writes(allowed) == []
