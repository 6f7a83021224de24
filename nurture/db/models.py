"""The data model: leads, their consent ledger, enrolments, the message outbox and the audit log.

All instants are aware UTC (:class:`nurture.db.UTCDateTime`); a lead's own zone is applied only
when a time is shown to them or a local send window is computed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from nurture import clock
from nurture.db import Base

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LeadStage(StrEnum):
    SIGNED_UP = "signed_up"
    BOOKED = "booked"
    CONSULTED = "consulted"
    PATIENT = "patient"
    LOST = "lost"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Purpose(StrEnum):
    """Why a message is sent; consent is recorded per (channel, purpose).

    ``optin`` and ``alert`` exist only on messages. ``optin`` is the opt-in confirmation that
    must be the first text a number receives; it is allowed whenever any SMS purpose is granted,
    because it confirms exactly that grant. ``alert`` goes to staff about a lead. The consent
    ledger itself only knows ``care`` and ``marketing``.
    """

    CARE = "care"
    MARKETING = "marketing"
    OPTIN = "optin"
    ALERT = "alert"  # to the clinic's staff, never to the lead (crisis words, replies)


class ConsentAction(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


class ConsentSource(StrEnum):
    WEB_FORM = "web_form"
    API = "api"
    SMS_KEYWORD = "sms_keyword"
    EMAIL_ONE_CLICK = "email_one_click"
    EMAIL_LINK = "email_link"
    STAFF = "staff"
    PROVIDER_OPT_OUT = "provider_opt_out"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    # The FCC Reassigned Numbers Database says the number changed hands since the consent.
    REASSIGNED_NUMBER = "reassigned_number"
    # Words in an e-mail reply to the clinic ("unsubscribe", "stop e-mailing me"), issue 13 §2.
    EMAIL_REPLY = "email_reply"
    # A booking tool's booking (issue 13 §1): care about the appointment, never marketing.
    BOOKING = "booking"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


def _enum(enum_cls: type[StrEnum]) -> Enum:
    # Stored as its value in a VARCHAR: adding a member never needs a database type change.
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    # A zone set on purpose, by the person or by staff: it wins over everything else.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The zone the sign-up form's browser reported: weak evidence, it only narrows send windows.
    browser_timezone: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    state: Mapped[str | None] = mapped_column(String(2))
    stage: Mapped[LeadStage] = mapped_column(_enum(LeadStage), default=LeadStage.SIGNED_UP)
    consult_at: Mapped[datetime | None]
    # Set by a crisis text or any free-text reply; marketing waits until staff resume it.
    marketing_paused_at: Mapped[datetime | None]
    marketing_pause_reason: Mapped[str | None] = mapped_column(String(200))
    # Crisis words: every nurture send (care steps too) waits until staff have spoken to them.
    crisis_hold_at: Mapped[datetime | None]
    # The provider said this number cannot receive texts (landline, invalid, unreachable).
    sms_unreachable_at: Mapped[datetime | None]
    # Bumped whenever consult_at changes; rows planned from an older value can never be sent.
    consult_version: Mapped[int] = mapped_column(default=0)
    # The lead confirmed this consult (replied C); cleared when the consult moves.
    consult_confirmed_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Where the first sign-up came from (the page's UTM tags, from the form or the API): the
    # funnel groups by them. Set once: a second sign-up does not rewrite the first touch.
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=clock.utcnow, onupdate=clock.utcnow)


class ConsentEvent(Base):
    """One grant or revocation. Append-only: the current state is the latest per key."""

    __tablename__ = "consent_events"
    __table_args__ = (Index(None, "lead_id", "channel", "purpose", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    purpose: Mapped[Purpose] = mapped_column(_enum(Purpose))
    action: Mapped[ConsentAction] = mapped_column(_enum(ConsentAction))
    source: Mapped[ConsentSource] = mapped_column(_enum(ConsentSource))
    # Who, what and where: disclosure text and version, page URL, IP, user agent, raw body.
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        # At most one active enrolment per (lead, sequence); ended ones are history.
        Index(
            "uq_enrollments_active",
            "lead_id",
            "sequence_key",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    sequence_key: Mapped[str] = mapped_column(String(64))
    sequence_version: Mapped[int]
    status: Mapped[EnrollmentStatus] = mapped_column(
        _enum(EnrollmentStatus), default=EnrollmentStatus.ACTIVE
    )
    exit_reason: Mapped[str | None] = mapped_column(String(200))
    enrolled_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    ended_at: Mapped[datetime | None]


class Message(Base):
    """The outbox: one row per planned message, from planning to its terminal state."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_due_at", "status", "due_at"),
        # The dispatcher's claim reads only this small index, however large the table grows.
        Index(
            "ix_messages_due_scheduled",
            "due_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        Index(None, "status", "status_at"),
        Index(None, "lead_id", "created_at"),
        Index(None, "enrollment_id"),
        Index(None, "provider_id"),  # status callbacks find their row by the provider's id
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT")
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    sequence_key: Mapped[str | None] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    purpose: Mapped[Purpose] = mapped_column(_enum(Purpose))
    template_key: Mapped[str] = mapped_column(String(100))
    # Set for staff alerts: where the message goes instead of the lead's own address.
    recipient: Mapped[str | None] = mapped_column(String(320))
    # Extra render context (the inbound text a staff alert is about).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    anchor: Mapped[str] = mapped_column(String(32), default="enrolled_at")
    anchor_version: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    not_after: Mapped[datetime | None]
    # No default: a row is born in a state nurture.outbox.states names (planned(), REPLIED).
    status: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus))
    # When the row entered its current status; the reaper judges staleness by it.
    status_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(255))  # an e-mail Message-ID can be long
    template_version: Mapped[int | None]
    # The A/B variant of the step this message was assigned (its name in the step's variants),
    # None for a step without variants.
    variant: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class AuditEvent(Base):
    """Append-only record of every consent change, send attempt and staff action."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "lead_id", "occurred_at"),
        Index(None, "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="RESTRICT"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InboundClass(StrEnum):
    OPT_OUT = "opt_out"
    OPT_OUT_PHRASE = "opt_out_phrase"
    OPT_IN = "opt_in"
    HELP = "help"
    CRISIS = "crisis"
    CONFIRM = "confirm"
    OTHER = "other"


class InboundMessage(Base):
    """Every text a lead sends us, with Twilio's raw parameters; one row per MessageSid."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index(None, "lead_id", "received_at"),
        Index(None, "needs_attention", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    classification: Mapped[InboundClass] = mapped_column(_enum(InboundClass))
    # Staff should read it: crisis words, free text, a phrase we read as an opt-out.
    needs_attention: Mapped[bool] = mapped_column(default=False)
    attention_reason: Mapped[str | None] = mapped_column(String(200))
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class MessageAttempt(Base):
    """One provider call for a message, written when it settles: which attempt it was, the
    provider's id for it and how it ended.

    A status report names its message and attempt (or only the provider's id, which this table
    maps to an attempt), so a late report about attempt 1 is told apart from attempt 2 and never
    moves the row. ``messages.provider_id`` is the current attempt's id (none while it is sent).
    """

    __tablename__ = "message_attempts"
    __table_args__ = (UniqueConstraint("message_id", "number"), Index(None, "provider_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="RESTRICT"))
    number: Mapped[int]  # messages.attempts when this call was made: 1, 2, …
    provider_id: Mapped[str | None] = mapped_column(String(255))  # none when it never left
    started_at: Mapped[datetime]
    settled_at: Mapped[datetime]
    outcome: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus))


class DeliveryEvent(Base):
    """A provider status callback, stored once per idempotency token.

    ``applied_at`` is null while the report waits: for its attempt's send to settle (it beat
    the provider's answer) or, without a message, for a copy or a send that names its sid.
    """

    __tablename__ = "delivery_events"
    __table_args__ = (Index(None, "message_id"), Index(None, "provider_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="RESTRICT"))
    attempt: Mapped[int | None]  # the message's attempt the report is about
    provider_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    applied_at: Mapped[datetime | None]  # weighed against its settled attempt


class PauseScope(StrEnum):
    ALL = "all"
    CHANNEL = "channel"
    SEQUENCE = "sequence"


class Pause(Base):
    """A kill switch: while active, matching rows stay scheduled and nothing matching is sent."""

    __tablename__ = "pauses"
    __table_args__ = (Index(None, "ended_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[PauseScope] = mapped_column(_enum(PauseScope))
    value: Mapped[str | None] = mapped_column(String(64))  # the channel or sequence key
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))


class LeadEvent(Base):
    """A lifecycle event as it arrived (booked, rescheduled, cancelled, completed, no-show)."""

    __tablename__ = "lead_events"
    __table_args__ = (Index(None, "lead_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    type: Mapped[str] = mapped_column(String(32))
    consult_at: Mapped[datetime | None]
    # The sender's own id for the event, when it gives one: a second delivery is recognised.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    changed: Mapped[bool] = mapped_column(default=True)
    actor: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class TemplateState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    DELETED = "deleted"  # a draft thrown away: kept, so its number and audit trail stay true


class TemplateVersion(Base):
    """One version of a message template. History is linear and nothing is ever overwritten:
    saving makes a new draft, a rollback publishes a copy of an older version as a new one."""

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("channel", "key", "version"),
        # Exactly one published version per template.
        Index(
            "uq_template_versions_published",
            "channel",
            "key",
            unique=True,
            postgresql_where=text("state = 'published'"),
            sqlite_where=text("state = 'published'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    state: Mapped[TemplateState] = mapped_column(_enum(TemplateState))
    source: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # "file" (templates/) or "ui" (the studio)
    file_hash: Mapped[str | None] = mapped_column(String(64))  # for "file": the content's sha256
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    published_at: Mapped[datetime | None]


class SequenceVersion(Base):
    """One version of a sequence, as YAML (issue 15 §1): the files under config/sequences/ seed
    it, marketing edits it in the studio. Like templates, history is linear and nothing is
    overwritten; states are TemplateState's (draft, published, archived, deleted). An enrolment
    records the version it began with (Enrollment.sequence_version) and keeps it."""

    __tablename__ = "sequence_versions"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        Index(
            "uq_sequence_versions_published",
            "key",
            unique=True,
            postgresql_where=text("state = 'published'"),
            sqlite_where=text("state = 'published'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    state: Mapped[TemplateState] = mapped_column(_enum(TemplateState))
    source: Mapped[str] = mapped_column(Text)  # the sequence as YAML, as a file would hold it
    origin: Mapped[str] = mapped_column(String(16))  # "file" (config/sequences/) or "ui"
    file_hash: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    published_at: Mapped[datetime | None]


class StaffRole(StrEnum):
    MARKETING = "marketing"
    OPS = "ops"
    ADMIN = "admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole))
    # Where "send test to me" delivers a text.
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    expires_at: Mapped[datetime]


class WorkerHeartbeat(Base):
    """Each worker writes one every few seconds: ops see which are alive on any broker."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(200), primary_key=True)
    pid: Mapped[int]
    queues: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime]


class DisclosureVersion(Base):
    """The consent wording of one version of config/disclosures.yaml, as first recorded.

    Kept as long as any consent names it (rule 1: the exact words a person agreed to, years
    later) and never changed: new wording is a new version (nurture.consent.disclosures), and
    the database refuses UPDATE and DELETE on the table.
    """

    __tablename__ = "disclosure_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    email_marketing: Mapped[str] = mapped_column(Text)
    sms_marketing: Mapped[str] = mapped_column(Text)
    sms_care: Mapped[str] = mapped_column(Text)
    first_recorded_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class ReassignedAnswer(StrEnum):
    """What the FCC Reassigned Numbers Database answers for a number and a consent date."""

    YES = "yes"  # permanently disconnected since that date: someone else may have it now
    NO = "no"  # not disconnected since: the consent still reaches its giver (safe harbor)
    NO_DATA = "no_data"  # the database cannot tell (no safe harbor); the text still goes


class ReassignedCheck(Base):
    """One answer of the Reassigned Numbers Database (compliance rule 12), kept as the record
    that the number was checked with its consent date before a text, and as the cache: a text
    within ``policy.reassigned_numbers.cache_for`` of an answer for the same number and
    consent date does not ask again."""

    __tablename__ = "reassigned_checks"
    __table_args__ = (Index(None, "phone", "consent_date", "checked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    phone: Mapped[str] = mapped_column(String(20))
    consent_date: Mapped[date]  # the LastVerifiedDate asked with (the consent's UTC day)
    answer: Mapped[ReassignedAnswer] = mapped_column(_enum(ReassignedAnswer))
    checked_at: Mapped[datetime]


# --- bounces and complaints from e-mail providers (issue 13 §3) ---


class EmailFeedbackKind(StrEnum):
    BOUNCE = "bounce"  # permanent: the address is suppressed
    TRANSIENT_BOUNCE = "transient_bounce"  # mailbox full, try later: only counted
    COMPLAINT = "complaint"  # marked as spam: the address is suppressed


class EmailFeedback(Base):
    """One bounce or complaint for one address, as an e-mail provider reported it. The
    provider's event id (with the address: one SES notice can name many) keeps a redelivery
    from counting twice; the rows are also what the ops console's daily rates count."""

    __tablename__ = "email_feedback"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", "address"),
        Index(None, "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(320))  # lower-cased
    kind: Mapped[EmailFeedbackKind] = mapped_column(_enum(EmailFeedbackKind))
    detail: Mapped[str] = mapped_column(String(500), default="")  # e.g. "Permanent/General"
    occurred_at: Mapped[datetime]  # the provider's time, else when it arrived
    received_at: Mapped[datetime]


class EmailWebhookToken(Base):
    """A signature token already used (Mailgun signs a timestamp and token, not the body): a
    second delivery with the same token is a replay and is refused."""

    __tablename__ = "email_webhook_tokens"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    token: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime]


# --- booking tool deliveries (issue 13 §1) ---
class BookingDelivery(Base):
    """One delivery of a booking tool's webhook, kept once per provider event identity.

    Booking tools deliver at least once: a second delivery with the same key is acknowledged
    and changes nothing. ``outcome`` says what the delivery did (applied, stale, ignored, ...)."""

    __tablename__ = "booking_deliveries"
    __table_args__ = (UniqueConstraint("provider", "delivery_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    delivery_key: Mapped[str] = mapped_column(String(400))
    booking_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    # The booking's own timestamp for this change: the order events are applied in.
    booking_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


class BookingState(Base):
    """What nurture last applied for one booking: later deliveries older than it are stale
    (a late "created" never undoes a "canceled"), and a booking replaced by a reschedule
    never books again."""

    __tablename__ = "booking_states"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    booking_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    # What the last change applied made it: booked, replaced, cancelled, no_show, completed.
    last_change: Mapped[str] = mapped_column(String(32))
    consult_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=clock.utcnow, onupdate=clock.utcnow)


# --- speed-to-lead (issue 13 §5) ---


class LeadArrival(Base):
    """A new lead as the clinic hears of it (issue 13 §5): how they came, when staff were told
    (at once in staffed hours, else in the digest when staffed hours begin), by when someone
    should have contacted them (one business day), and the first contact, by staff or by a
    booking. One row per lead; a lead contacted without ever being announced (one from before
    this table) gets its row when first contacted."""

    __tablename__ = "lead_arrivals"
    __table_args__ = (
        Index(None, "awaiting_digest", "arrived_at"),
        Index(None, "first_contacted_at", "contact_due_at"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="RESTRICT"), primary_key=True
    )
    arrived_at: Mapped[datetime]
    # How they came, in staff words ("the sign-up form", "a Calendly booking"): never their answers.
    came_by: Mapped[str] = mapped_column(String(60))
    awaiting_digest: Mapped[bool] = mapped_column(default=False)
    announced_at: Mapped[datetime | None]
    contact_due_at: Mapped[datetime | None]
    first_contacted_at: Mapped[datetime | None]
    first_contacted_by: Mapped[str | None] = mapped_column(String(200))  # an audit actor
    first_contact_how: Mapped[str | None] = mapped_column(String(60))


class BeatTick(Base):
    """When a beat-scheduled task last ran. A worker's heartbeat says nothing about the beat;
    this row does (`nurture doctor`): it only moves when the beat published and a worker ran."""

    __tablename__ = "beat_ticks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]


# --- replies by e-mail (issue 13 §2) ---


class MailboxMessage(Base):
    """One message read from the reply mailbox over IMAP, recorded before it is marked seen.

    A message is known by its place in the mailbox (UIDVALIDITY and UID, unique): after a crash
    between recording and ``\\Seen`` the next poll finds the row and only marks it. The same mail
    at a new place (the server renumbered the folder) has the ``fingerprint`` of a recorded one
    and is recorded as a duplicate, not handled twice."""

    __tablename__ = "mailbox_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        Index(None, "fingerprint"),
        Index(None, "lead_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(300))  # user@host/folder, never the password
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    # sha256 of the Message-ID header (of the raw bytes when there is none).
    fingerprint: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(255))
    from_address: Mapped[str | None] = mapped_column(String(320))
    # reply, auto_reply, bounce, from_clinic (staff answering an alert) or duplicate
    kind: Mapped[str] = mapped_column(String(20))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    # The e-mail of ours it answers (In-Reply-To / References), when it names one.
    replied_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="RESTRICT")
    )
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="RESTRICT")
    )
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime]


# --- the lead page: staff notes (issue 14, "Leads") ---


class LeadNote(Base):
    """A note a staff member wrote about a lead ("called, prefers mornings"). Append-only, like
    the audit log: a note is never changed or removed (the database refuses), so what the front
    desk knew and when stays on record; a correction is a new note."""

    __tablename__ = "lead_notes"
    __table_args__ = (Index(None, "lead_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))  # an audit actor: staff:<e-mail>
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)


# --- the funnel: first-party click tracking (issue 15 §2) ---


class LinkClick(Base):
    """One click on a tracked link in a message (``/r/{token}``): which message, which lead,
    where it led, when. No third party and no open pixel: only a click the person made."""

    __tablename__ = "link_clicks"
    __table_args__ = (
        Index(None, "message_id"),
        Index(None, "lead_id", "clicked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="RESTRICT"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="RESTRICT"))
    url: Mapped[str] = mapped_column(Text)
    clicked_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
