"""Logging: one line per event, phone numbers and e-mail addresses masked wherever they appear.

Code logs ids, not contact details; the masking filter is the safety net for the day someone
forgets (an exception message from a provider, say, that quotes the number).
"""

from __future__ import annotations

import logging
import re
import sys

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
PHONE = re.compile(r"\+?\d[\d\-\s().]{7,}\d")


def mask_email(text: str) -> str:
    return EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def mask_phone(text: str) -> str:
    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) < 9:  # not a phone number (an id, a count)
            return match.group(0)
        return f"***{digits[-2:]}"

    return PHONE.sub(_mask, text)


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


def configure_logging(level: str = "INFO") -> None:
    """Send the application's logs to stderr, masked. Safe to call more than once."""
    root = logging.getLogger()
    if any(getattr(handler, "_nurture", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._nurture = True  # type: ignore[attr-defined]
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
