"""Configuration from the environment (``NURTURE_*``), with defaults for the embedded setup.

The defaults start the whole service on one machine with nothing installed: SQLite under
``var/``, kombu's SQLAlchemy transport on SQLite as the broker, and messages written as files
under ``var/outbox/``. Production sets the database, broker and transports explicitly.
"""

from __future__ import annotations

import contextlib
import os
import re
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
    # Celery's line per task received and per task done, and beat's per tick. `nurture run`
    # turns them off (a terminal scrolling every few seconds hides what a person needs to
    # see); failures are logged either way.
    log_tasks: bool = True

    # --- booking tools (issue 13 §1): each webhook answers 404 until its secret is set ---
    calendly_signing_key: SecretStr | None = None
    calcom_secret: SecretStr | None = None
    # Acuity signs its webhooks with the API key and its webhook carries only ids: the
    # appointment is fetched with the user id and API key (HTTP basic auth).
    acuity_api_key: SecretStr | None = None
    acuity_user_id: str = ""
    acuity_api_url: str = "https://acuityscheduling.com/api/v1"
    # Square's bookings name a customer id only: its e-mail and phone are fetched with a token.
    square_signature_key: SecretStr | None = None
    square_access_token: SecretStr | None = None
    square_api_url: str = "https://connect.squareup.com"
    # Each fetch from a booking tool's API: seconds per try, and tries.
    booking_fetch_timeout: float = Field(default=10.0, gt=0, le=60)
    booking_fetch_attempts: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _booking_fetch_credentials(self) -> Settings:
        if self.acuity_api_key is not None and not self.acuity_user_id:
            raise ValueError(
                "NURTURE_ACUITY_API_KEY needs NURTURE_ACUITY_USER_ID (Acuity's user id)"
            )
        if self.square_signature_key is not None and self.square_access_token is None:
            raise ValueError(
                "NURTURE_SQUARE_SIGNATURE_KEY needs NURTURE_SQUARE_ACCESS_TOKEN (to read the "
                "customer a booking names)"
            )
        for name, url in (
            ("NURTURE_ACUITY_API_URL", self.acuity_api_url),
            ("NURTURE_SQUARE_API_URL", self.square_api_url),
        ):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(f"{name} must be an absolute http(s) URL")
        return self

    # --- end of booking tools (issue 13 §1) ---

    # --- bounces and complaints, DKIM (issue 13 §3, §4) ---
    # Amazon SES through SNS: the topic ARNs whose messages are accepted (comma-separated);
    # none, and POST /webhooks/email/ses answers 404.
    ses_topic_arns: Annotated[tuple[str, ...], NoDecode] = ()
    # Where SNS signing certificates and subscription confirmations may be fetched from. Only
    # a test points it elsewhere (at its own HTTPS stand-in); it must stay an https pattern.
    sns_host_pattern: str = r"^https://sns\.[-a-z0-9]+\.amazonaws\.com(?:\.cn)?/"
    # SendGrid's "Signed Event Webhook" public key (base64, as Mail Settings shows it).
    sendgrid_webhook_public_key: str = ""
    mailgun_signing_key: SecretStr = SecretStr("")
    # Postmark signs nothing: its webhook URL carries HTTP basic auth with these.
    postmark_webhook_user: str = ""
    postmark_webhook_password: SecretStr = SecretStr("")
    # DKIM for the SMTP transport: all three, or none. The key is a PEM file.
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key: Path | None = None

    @field_validator("ses_topic_arns", mode="before")
    @classmethod
    def _topic_arns(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be comma-separated SNS topic ARNs")
        arns = tuple(str(item).strip() for item in items if str(item).strip())
        for arn in arns:
            if not re.fullmatch(r"arn:aws[-a-z]*:sns:[-a-z0-9]+:\d{12}:[-\w.]{1,256}", arn):
                raise ValueError(f"{arn[:80]!r} is not an SNS topic ARN (arn:aws:sns:…)")
        return arns

    @field_validator("sns_host_pattern")
    @classmethod
    def _https_pattern(cls, value: str) -> str:
        if not value.startswith("^https://"):
            raise ValueError("must start with ^https:// (certificates come over HTTPS only)")
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"is not a regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _dkim_complete(self) -> Settings:
        given = {
            "NURTURE_DKIM_SELECTOR": bool(self.dkim_selector),
            "NURTURE_DKIM_DOMAIN": bool(self.dkim_domain),
            "NURTURE_DKIM_PRIVATE_KEY": self.dkim_private_key is not None,
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, ok in given.items() if not ok)
            raise ValueError(f"DKIM needs its selector, domain and private key: set {missing}")
        return self

    # --- end of issue 13 §3, §4 ---

    # --- replies by e-mail (issue 13 §2): the reply mailbox is read only when the URL is set ---
    # imaps://user:password@host:993/INBOX (the password URL-encoded); plain imap:// on loopback.
    imap_url: SecretStr | None = None
    imap_poll_interval: float = 30.0  # seconds between polls (beat)
    imap_idle_seconds: float = 20.0  # within a poll, how long IDLE waits for new mail
    # --- end of replies by e-mail (issue 13 §2) ---

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
