"""Whether an e-mail was written by a machine answering for someone: an out-of-office, a
vacation notice, a ticket system's acknowledgement. Pure.

RFC 3834 §5: ``Auto-Submitted`` other than ``no`` marks an automatic message. Clients that
predate it mark theirs with ``X-Autoreply`` / ``X-Autorespond`` (Zimbra, cPanel, Yahoo),
``Precedence: auto_reply`` (or ``bulk`` / ``junk``, what vacation(1) honours), Exchange's
out-of-office message classes, and ``X-FC-MachineGenerated``. Such a message is recorded and
otherwise ignored: it must not page a clinician, pause marketing or be read as an opt-out, and
nurture never answers it (no loops).
"""

from __future__ import annotations

from email.message import Message

_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})
_MARKER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-FC-MachineGenerated")
_OUT_OF_OFFICE_CLASSES = ("IPM.Note.Rules.OofTemplate", "IPM.Note.Rules.ExternalOofTemplate")


def _get(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):
        return ""
    return str(value).strip() if value is not None else ""


def reason(message: Message) -> str | None:
    """Why this reads as an automatic reply (for the record), or None for a person's mail."""
    submitted = _get(message, "Auto-Submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted[:40]}"
    for name in _MARKER_HEADERS:
        if _get(message, name):
            return name
    precedence = _get(message, "Precedence").lower() or _get(message, "X-Precedence").lower()
    if precedence in _PRECEDENCE:
        return f"Precedence: {precedence}"
    if _get(message, "X-MS-Exchange-Generated-Message-Source") or any(
        _get(message, "X-MS-Exchange-Organization-MessageClass").startswith(oof)
        or _get(message, "Content-Class").startswith(oof)
        for oof in _OUT_OF_OFFICE_CLASSES
    ):
        return "Microsoft out-of-office"
    return None
