"""Configuration from the environment (``NURTURE_*``), with defaults for the embedded setup.

The defaults start the whole service on one machine with nothing installed: SQLite under
``var/``, kombu's SQLAlchemy transport on SQLite as the broker, and messages written as files
under ``var/outbox/``. Production sets the database, broker and transports explicitly.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TWILIO_API_URL = "https://api.twilio.com"


class Settings(BaseSettings):
    """Every knob of the service. Field ``x`` is read from ``NURTURE_X`` unless noted."""

    model_config = SettingsConfigDict(
        env_prefix="NURTURE_",
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    # Real messages carry links to the public URL (unsubscribe, preferences): over plain http
    # they can be read and altered on the way, and one-click unsubscribe (RFC 8058) needs
    # HTTPS. Only a developer's or a test's own machine may say otherwise, on purpose.
    allow_insecure_public_url: bool = False
    secret_key: SecretStr | None = None
    config_dir: Path = Path("config")
    templates_dir: Path = Path("templates")

    email_backend: Literal["outbox", "smtp"] = "outbox"
    smtp_url: SecretStr = SecretStr("smtp://127.0.0.1:1025")
    smtp_timeout: float = 20.0
    email_from: str = ""
    # Optional second List-Unsubscribe target (RFC 2369), e.g. unsubscribe@clinic.example.
    unsubscribe_mailto: str = ""

    sms_backend: Literal["outbox", "twilio"] = "outbox"
    twilio_account_sid: str = Field(
        default="",
        validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "NURTURE_TWILIO_ACCOUNT_SID"),
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "NURTURE_TWILIO_AUTH_TOKEN"),
    )
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_url: str = DEFAULT_TWILIO_API_URL
    twilio_timeout: float = 15.0
    # Twilio drops a message still queued after this many seconds instead of delivering it late.
    sms_validity_period: int = Field(default=3600, ge=1, le=36000)
    # Texts per second from our sender, shared by all workers (Redis): a long code sends ~1,
    # toll-free 3, a short code ~100. 0 turns the throttle off.
    sms_per_second: float = Field(default=1.0, ge=0, le=1000)

    outbox_dir: Path | None = None
    api_key: SecretStr | None = None
    # The sites that may show the sign-up form in an iframe (GET /embed/consult), as origins:
    # "https://clinic.example,https://www.clinic.example". None: the embed answers 404.
    embed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # When set, GET /metrics needs "Authorization: Bearer <token>"; unset, it is open (bind
    # the web port privately then: the counts describe the clinic's leads and traffic).
    metrics_token: SecretStr | None = None

    dispatch_interval: float = Field(default=5.0, gt=0, le=3600)
    dispatch_batch_size: int = Field(default=500, ge=1, le=10000)
    # A claimed row still `queued` after this long lost its task (broker restart): enqueue again.
    stale_queued_after: float = Field(default=300.0, gt=0)
    # A row still `sending` after this long belongs to a crashed worker: `unknown`, for ops.
    stale_sending_after: float = Field(default=600.0, gt=0)
    # How often the reaper looks for lost tasks, crashed sends and `unknown` texts to settle.
    reap_interval: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=50)
    # First retry delay; each later one doubles, up to an hour (with jitter).
    retry_base: float = Field(default=60.0, gt=0, le=3600)
    # Rendered bodies older than this are deleted by `nurture ops purge` (minimum necessary).
    body_retention_days: int = Field(default=90, ge=1)
    # The worker serves its Prometheus metrics here (0: off). Web serves /metrics itself.
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    # "json" (one event per line, for log collectors), "text", or "auto": text on a terminal.
    log_format: Literal["auto", "json", "text"] = "auto"

    log_level: str = "INFO"

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://nurture.example.org")
        return value.rstrip("/")

    @field_validator("embed_origins", mode="before")
    @classmethod
    def _embed_origins_are_origins(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be comma-separated origins such as https://clinic.example")
        origins = []
        for item in items:
            origin = str(item).strip().rstrip("/")
            if not origin:
                continue
            parts = urlsplit(origin)
            try:
                parts.port  # noqa: B018 (it raises ValueError for a port that is not one)
            except ValueError:
                parts = urlsplit("")
            if (
                parts.scheme != "https"
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or parts.username
                or any(char in origin for char in " ;,'\"*")
            ):
                raise ValueError(
                    f"{origin!r} is not an https origin: write scheme and host (and port) "
                    "only, such as https://clinic.example"
                )
            origins.append(origin)
        return tuple(origins)

    @field_validator("twilio_api_url")
    @classmethod
    def _api_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_needs_credentials(self) -> Settings:
        if self.sms_backend == "twilio":
            missing = [
                name
                for name, value in (
                    ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                    ("TWILIO_AUTH_TOKEN", self.twilio_auth_token.get_secret_value()),
                )
                if not value
            ]
            if not (self.twilio_from or self.twilio_messaging_service_sid):
                missing.append("NURTURE_TWILIO_FROM or NURTURE_TWILIO_MESSAGING_SERVICE_SID")
            if missing:
                raise ValueError(f"NURTURE_SMS_BACKEND=twilio needs {', '.join(missing)}")
        really_sends = self.sms_backend == "twilio" or self.email_backend == "smtp"
        insecure = self.public_url.startswith("http://") and not self.allow_insecure_public_url
        if really_sends and insecure:
            raise ValueError(
                f"NURTURE_PUBLIC_URL is {self.public_url}: with real e-mail or texts "
                "(NURTURE_EMAIL_BACKEND=smtp or NURTURE_SMS_BACKEND=twilio) it must be "
                "https, because every message links to it; for a test on your own machine "
                "set NURTURE_ALLOW_INSECURE_PUBLIC_URL=1"
            )
        if self.public_url.startswith("https://") and self.secret_key is None:
            raise ValueError(
                "NURTURE_SECRET_KEY must be set when NURTURE_PUBLIC_URL is https "
                "(unsubscribe links are signed with it and must outlive any one machine)"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'nurture.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.var_dir / 'broker.sqlite3'}"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.var_dir / "outbox"

    @property
    def embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("sqla+")

    def secret(self) -> bytes:
        """The signing key: from the environment, else one kept in ``var/`` for this machine.

        Every process of the embedded setup reads the same file, so links signed by the web
        process verify in the worker and keep working across restarts.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            candidate = path.with_name(f"secret_key.{os.getpid()}.tmp")
            candidate.write_text(secrets.token_urlsafe(48))
            candidate.chmod(0o600)
            # link() fails if another process got there first: every process keeps one key.
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
            candidate.unlink()
        return path.read_text().strip().encode()


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
