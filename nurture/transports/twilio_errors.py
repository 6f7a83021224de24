"""What to do about each Twilio error code: one table, used by the sender and the status webhook."""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    RETRY = "retry"  # transient: back to scheduled with capped exponential backoff
    OPTED_OUT = "opted_out"  # the carrier or Twilio holds a STOP: revoke SMS consent
    UNREACHABLE = "unreachable"  # the number cannot receive texts: stop texting it
    # The handset is off or out of coverage: tried again later; only the third in a row to the
    # same number makes it unreachable (compliance rule 14).
    HANDSET_OFF = "handset_off"
    HALT = "halt"  # our content or sender is at fault: stop and alert staff
    FAIL = "fail"  # this message failed; nothing to learn about the number


TWILIO_ERRORS: dict[int, ErrorClass] = {
    21610: ErrorClass.OPTED_OUT,  # recipient replied STOP to this sender
    21211: ErrorClass.UNREACHABLE,  # invalid 'To' number
    21614: ErrorClass.UNREACHABLE,  # 'To' is not a mobile number
    21635: ErrorClass.UNREACHABLE,  # landline
    30003: ErrorClass.HANDSET_OFF,  # unreachable handset (off, out of coverage): 2-3 tries
    30004: ErrorClass.UNREACHABLE,  # message blocked
    30005: ErrorClass.UNREACHABLE,  # unknown destination handset
    30006: ErrorClass.UNREACHABLE,  # landline or unreachable carrier
    20429: ErrorClass.RETRY,  # too many requests
    30001: ErrorClass.RETRY,  # queue overflow
    30008: ErrorClass.RETRY,  # unknown error
    30007: ErrorClass.HALT,  # filtered by the carrier: fix the content
    30034: ErrorClass.HALT,  # unregistered 10DLC sender
}


def classify(code: int | None, http_status: int | None = None) -> ErrorClass:
    if code is not None and code in TWILIO_ERRORS:
        return TWILIO_ERRORS[code]
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return ErrorClass.RETRY
    return ErrorClass.FAIL
