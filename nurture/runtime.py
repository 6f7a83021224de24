"""Everything a process needs, built once from the settings: database, config, transports.

The web app, the CLI and the Celery worker each build one; tests build one against their own
database and transports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nurture.broker import BrokerGauge
from nurture.config.clinic import Clinic, Disclosures, load_clinic, load_disclosures
from nurture.config.integrations import Integrations, load_integrations
from nurture.config.policy import Policy, load_policy
from nurture.config.settings import Settings
from nurture.content.compose import Writer
from nurture.content.rendering import Renderer
from nurture.content.template_store import DbTemplateStore, FileTemplateStore
from nurture.db import make_engine, make_read_sessionmaker, make_sessionmaker
from nurture.leads.signup_limits import SignupLimiter, storage_uri_for
from nurture.outbox.send_path import SendPath
from nurture.outbox.throttle import SenderThrottle
from nurture.preview.drafts import Studio
from nurture.program.sequence_store import SequenceSource
from nurture.program.sequences import Catalog, load_catalog
from nurture.transports import EmailTransport, SmsTransport

if TYPE_CHECKING:
    from nurture.transports.smtp import DkimSigner


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # For transactions that only read (pages, API reads, the sign-in check): on SQLite they
    # take no write lock, and a write in one fails (nurture.db.read_only).
    read_sessions: sessionmaker[Session]
    clinic: Clinic
    disclosures: Disclosures
    policy: Policy
    # The sequences as published (the files seed them; the studio edits them): issue 15 §1.
    sequences: SequenceSource
    templates: DbTemplateStore
    renderer: Renderer = field(default_factory=Renderer)
    # Booking tools (issue 13 §1): which event types count as the consult.
    integrations: Integrations = field(default_factory=Integrations)
    email_override: EmailTransport | None = None
    sms_override: SmsTransport | None = None

    @property
    def catalog(self) -> Catalog:
        """The program as published now: read again after any publish, in any process."""
        return self.sequences.current()

    @cached_property
    def secret(self) -> bytes:
        return self.settings.secret()

    @cached_property
    def writer(self) -> Writer:
        """How messages are written: handed to the domain instead of these Services."""
        return Writer(
            clinic=self.clinic,
            public_url=self.settings.public_url,
            secret=self.secret,
            templates=self.templates,
            renderer=self.renderer,
        )

    @cached_property
    def studio(self) -> Studio:
        """The template studio's use cases (nurture.preview.drafts) take this, not Services."""
        return Studio(
            writer=self.writer,
            sequences=self.sequences,
            policy=self.policy,
            sessions=self.sessions,
            email=self.email,
            sms=self.sms,
        )

    @cached_property
    def email(self) -> EmailTransport:
        # Built on first use, so a prefork worker builds its own after the fork.
        return self.email_override or build_email_transport(self.settings, self.clinic)

    @cached_property
    def sms(self) -> SmsTransport:
        return self.sms_override or build_sms_transport(self.settings)

    @cached_property
    def broker(self) -> BrokerGauge:
        """Queue depths for /readyz, /metrics and the ops console: one connection per process."""
        return BrokerGauge(self.settings.resolved_broker_url)

    @cached_property
    def throttle(self) -> SenderThrottle | None:
        """The shared per-sender token bucket; only for real texts over a Redis broker."""
        broker = self.settings.resolved_broker_url
        if (
            self.sms_override is None
            and self.settings.sms_backend == "twilio"
            and self.settings.sms_per_second > 0
            and broker.startswith(("redis://", "rediss://"))
        ):
            return SenderThrottle(broker, per_second=self.settings.sms_per_second)
        return None

    @property
    def sms_sender(self) -> str:
        return self.settings.twilio_messaging_service_sid or self.settings.twilio_from or "outbox"

    @cached_property
    def send_path(self) -> SendPath:
        """What sending and delivery reports need: handed to them instead of these Services."""
        return SendPath(
            writer=self.writer,
            policy=self.policy,
            sequences=self.sequences,
            email=self.email,
            sms=self.sms,
            throttle=self.throttle,
            sms_sender=self.sms_sender,
            max_attempts=self.settings.max_attempts,
            retry_base=timedelta(seconds=self.settings.retry_base),
            unsubscribe_mailto=self.settings.unsubscribe_mailto,
        )

    @cached_property
    def signup_limiter(self) -> SignupLimiter:
        return SignupLimiter(
            storage_uri_for(self.settings.resolved_broker_url),
            per_ip=self.policy.signups.per_ip,
            per_phone=self.policy.signups.per_phone,
        )

    def close(self) -> None:
        # Only what was built (on first use) holds connections: SMTP keeps some open.
        built = self.__dict__
        if "email" in built:
            self.email.close()
        if "sms" in built:
            self.sms.close()
        if "throttle" in built and self.throttle is not None:
            self.throttle.close()
        if "broker" in built:
            self.broker.close()
        self.engine.dispose()


def sender_address(settings: Settings, clinic: Clinic) -> str:
    return settings.email_from or f"{clinic.name} <{clinic.email}>"


def build_email_transport(settings: Settings, clinic: Clinic) -> EmailTransport:
    sender = sender_address(settings, clinic)
    if settings.email_backend == "smtp":
        from nurture.transports.smtp import SmtpTransport, parse_smtp_url

        return SmtpTransport(
            parse_smtp_url(settings.smtp_url.get_secret_value()),
            sender=sender,
            reply_to=str(clinic.email),
            timeout=settings.smtp_timeout,
            dkim_signer=dkim_signer(settings),
        )
    from nurture.transports.outbox import OutboxEmailTransport

    return OutboxEmailTransport(
        settings.resolved_outbox_dir, sender=sender, reply_to=str(clinic.email)
    )


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The DKIM signer NURTURE_DKIM_* describe (issue 13 §4); ConfigError for a bad key."""
    if settings.dkim_private_key is None:
        return None
    from nurture.transports.smtp import DkimSigner

    return DkimSigner.load(settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key)


def build_sms_transport(settings: Settings) -> SmsTransport:
    if settings.sms_backend == "twilio":
        from nurture.transports.twilio_sms import TwilioSmsTransport

        return TwilioSmsTransport(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            api_url=settings.twilio_api_url,
            from_number=settings.twilio_from or None,
            messaging_service_sid=settings.twilio_messaging_service_sid or None,
            status_callback=f"{settings.public_url}/webhooks/twilio/status",
            validity_period=settings.sms_validity_period,
            timeout=settings.twilio_timeout,
        )
    from nurture.transports.outbox import OutboxSmsTransport

    return OutboxSmsTransport(
        settings.resolved_outbox_dir, sender=settings.twilio_from or "+15005550006"
    )


def build_services(settings: Settings) -> Services:
    """Load and cross-check configuration; raises ConfigError naming every problem."""
    files = FileTemplateStore(settings.templates_dir)
    clinic = load_clinic(settings.config_dir)
    catalog = load_catalog(settings.config_dir / "sequences", templates=files.available())
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    read_sessions = make_read_sessionmaker(engine)
    templates = DbTemplateStore(sessions, files)
    dkim_signer(settings)  # a DKIM key that cannot sign stops the start, not the first send
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=read_sessions,
        clinic=clinic,
        disclosures=load_disclosures(settings.config_dir),
        policy=load_policy(settings.config_dir),
        sequences=SequenceSource(read_sessions, catalog),
        templates=templates,
        integrations=load_integrations(settings.config_dir),
    )
