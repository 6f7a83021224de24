"""Logging: one line per event, phone numbers and e-mail addresses masked wherever they appear.

Code logs ids, not contact details; the masking filter is the safety net for the day someone
forgets (an exception message from a provider, say, that quotes the number).
"""

from __future__ import annotations

import logging
import re
import sys

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


def configure_logging(level: str = "INFO") -> None:
    """Send the application's logs to stderr, masked. Safe to call more than once.

    Where a host already configured the root logger (Celery's worker does), its handlers are
    kept and masked instead of doubled.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level.upper())
    mask_handlers(root)
