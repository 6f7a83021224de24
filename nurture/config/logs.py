"""Logging: one line per event, phone numbers and e-mail addresses masked wherever they appear.

Code logs ids, not contact details; the masking filter is the safety net for the day someone
forgets (an exception message from a provider, say, that quotes the number).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# E.164 (+12085550123) or North American dialling ((208) 555-0123, 208.555.0123, 1-208-555-0123);
# never digits inside a longer number or a decimal (ids, timings).
PHONE = re.compile(
    r"(?<![\w.+])(?:\+\d{8,15}|(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})(?![\w]|\.\d)"
)


NON_DIGIT = re.compile(r"\D")


def mask_email(text: str) -> str:
    return EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def mask_phone(text: str) -> str:
    return PHONE.sub(lambda match: "***" + NON_DIGIT.sub("", match.group(0))[-2:], text)


def mask(text: str) -> str:
    return mask_phone(mask_email(text))


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def mask_handlers(logger: logging.Logger) -> None:
    """Put the masking filter on every handler of ``logger`` (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


# Fields code may attach with ``extra=``; they become keys of the JSON line.
CONTEXT_FIELDS = (
    "message_id",
    "lead_id",
    "sequence",
    "step",
    "channel",
    "status",
    "task",
    "inbound_id",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors index without parsing prose."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                event[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exception"] = mask(record.exc_text)
        return json.dumps(event, default=str)


def make_formatter(log_format: str, stream: object = sys.stderr) -> logging.Formatter:
    use_json = log_format == "json" or (
        log_format == "auto" and not getattr(stream, "isatty", lambda: False)()
    )
    if use_json:
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


# Celery's routine lines: a task received (worker), a task done (its child), a tick (beat). A
# failed task is logged at ERROR by the same loggers, so quieting them to WARNING keeps it.
TASK_LINE_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")


def quiet_task_lines() -> None:
    for name in TASK_LINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    """Send the application's logs to stderr, masked: JSON lines, or text on a terminal.
    Safe to call more than once.

    Where a host already configured the root logger (Celery's worker does), its handlers are
    kept and masked instead of doubled.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(make_formatter(log_format))
        root.addHandler(handler)
        root.setLevel(level.upper())
    # The Twilio SDK logs six INFO lines per API request (URL, query, headers): nothing an
    # operator reads, and about 7 % of a sending worker's CPU. Its warnings still show.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    mask_handlers(root)
