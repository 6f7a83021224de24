"""Settings refuse unsafe production values; logs never show a phone number or e-mail."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from nurture.config.logs import MaskingFilter, configure_logging, mask
from nurture.config.settings import Settings


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings()
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_broker_url.startswith("sqla+sqlite:///")
    assert settings.email_backend == "outbox" and settings.sms_backend == "outbox"
    assert settings.embedded_broker


def test_twilio_backend_needs_credentials() -> None:
    with pytest.raises(ValidationError, match="TWILIO_ACCOUNT_SID"):
        Settings(sms_backend="twilio")


def test_https_public_url_needs_a_secret_key() -> None:
    with pytest.raises(ValidationError, match="NURTURE_SECRET_KEY"):
        Settings(public_url="https://nurture.example.org")


def test_public_url_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="absolute"):
        Settings(public_url="nurture.example.org")


def test_the_secret_is_created_once_and_kept(tmp_path: object) -> None:
    from pathlib import Path

    settings = Settings(var_dir=Path(str(tmp_path)))
    first = settings.secret()
    assert len(first) > 40
    assert Settings(var_dir=Path(str(tmp_path))).secret() == first
    assert (Path(str(tmp_path)) / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        ("sent to +12085550123 ok", "+12085550123"),
        ("call (208) 555-0123 now", "555-0123"),
        ("mail ana.rivera@example.com failed", "ana.rivera"),
        ("dotted 208.555.0123 here", "555.0123"),
        ("with country 1-208-555-0123", "555-0123"),
        ("twilio said To=+447700900123", "+447700900123"),
    ],
)
def test_contact_details_are_masked(raw: str, hidden: str) -> None:
    assert hidden not in mask(raw)


@pytest.mark.parametrize(
    "text",
    [
        "message 12345 took 250 ms",
        "Task nurture.send_email[c87d4ee8] succeeded in 0.05806834300005903s: None",
        "lead 2d0eceaf-b72f-4750-bfc8-a3cd911ebc0a",
        "claimed 20000000000 rows",
    ],
)
def test_ids_timings_and_counts_are_not_mistaken_for_phones(text: str) -> None:
    assert mask(text) == text


def test_the_filter_masks_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "to %s", ("+12085550123",), None)
    MaskingFilter().filter(record)
    assert "+12085550123" not in record.getMessage()
    try:
        raise ValueError("bad number +12085550123")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    MaskingFilter().filter(record)
    assert record.exc_text is not None and "+12085550123" not in record.exc_text


def test_json_log_lines_carry_the_message_context_and_are_masked() -> None:
    import json

    from nurture.config.logs import JsonFormatter

    record = logging.LogRecord(
        "nurture.outbox.dispatch",
        logging.INFO,
        __file__,
        1,
        "message %s sent to %s",
        (7, "+12085550123"),
        None,
    )
    record.message_id, record.lead_id, record.status, record.step = 7, "abc", "sent", "welcome"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "message 7 sent to ***23"
    assert (line["level"], line["logger"], line["message_id"], line["status"], line["step"]) == (
        "info",
        "nurture.outbox.dispatch",
        7,
        "sent",
        "welcome",
    )
    assert line["ts"].endswith("+00:00")


def test_text_logs_on_a_terminal_json_otherwise() -> None:
    from nurture.config.logs import JsonFormatter, make_formatter

    class Terminal:
        def isatty(self) -> bool:
            return True

    assert not isinstance(make_formatter("auto", Terminal()), JsonFormatter)
    assert isinstance(make_formatter("auto", object()), JsonFormatter)
    assert isinstance(make_formatter("json", Terminal()), JsonFormatter)


@pytest.mark.parametrize(
    "backends",
    [{"email_backend": "smtp"}, {"sms_backend": "twilio"}],
    ids=["smtp", "twilio"],
)
def test_rule_18_real_messages_refuse_an_http_public_url(
    monkeypatch: pytest.MonkeyPatch, backends: dict[str, str]
) -> None:
    monkeypatch.delenv("NURTURE_ALLOW_INSECURE_PUBLIC_URL")
    values: dict[str, Any] = {
        **backends,
        "twilio_account_sid": "AC1",
        "twilio_auth_token": "t",
        "twilio_from": "+12085550100",
    }
    with pytest.raises(ValidationError, match="must be https") as refused:
        Settings(public_url="http://nurture.example.org", **values)
    assert "NURTURE_ALLOW_INSECURE_PUBLIC_URL=1" in str(refused.value)
    # On purpose, for a machine of one's own; and the embedded default (files) never refuses.
    Settings(public_url="http://127.0.0.1:8000", allow_insecure_public_url=True, **values)
    Settings(public_url="http://127.0.0.1:8000", allow_insecure_public_url=False)


def test_the_twilio_sdk_does_not_log_every_request_but_still_warns() -> None:
    twilio_log = logging.getLogger("twilio.http_client")
    before = twilio_log.level
    try:
        twilio_log.setLevel(logging.NOTSET)
        configure_logging("INFO", "json")
        assert not twilio_log.isEnabledFor(logging.INFO)  # six lines per text, with its URL
        assert twilio_log.isEnabledFor(logging.WARNING)
    finally:
        twilio_log.setLevel(before)


def test_quieting_task_lines_keeps_failures() -> None:
    from nurture.config.logs import TASK_LINE_LOGGERS, quiet_task_lines

    before = {name: logging.getLogger(name).level for name in TASK_LINE_LOGGERS}
    try:
        quiet_task_lines()
        for name in TASK_LINE_LOGGERS:
            quiet = logging.getLogger(name)
            assert not quiet.isEnabledFor(logging.INFO)  # "Task … succeeded", "Sending due task"
            assert quiet.isEnabledFor(logging.ERROR)  # "Task … raised unexpected: …"
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
