"""The data model: leads, their consent ledger, enrolments, the message outbox and the audit log.

All instants are aware UTC (:class:`nurture.db.UTCDateTime`); a lead's own zone is applied only
when a time is shown to them or a local send window is computed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, text
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

    ``optin`` exists only on messages: the opt-in confirmation that must be the first text a
    number receives. It is allowed whenever any SMS purpose is granted, because it confirms
    exactly that grant; the consent ledger itself only knows ``care`` and ``marketing``.
    """

    CARE = "care"
    MARKETING = "marketing"
    OPTIN = "optin"


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
    timezone: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    state: Mapped[str | None] = mapped_column(String(2))
    stage: Mapped[LeadStage] = mapped_column(_enum(LeadStage), default=LeadStage.SIGNED_UP)
    consult_at: Mapped[datetime | None]
    # Bumped whenever consult_at changes; rows planned from an older value can never be sent.
    consult_version: Mapped[int] = mapped_column(default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
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
    anchor: Mapped[str] = mapped_column(String(32), default="enrolled_at")
    anchor_version: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    not_after: Mapped[datetime | None]
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus), default=MessageStatus.SCHEDULED
    )
    # When the row entered its current status; the reaper judges staleness by it.
    status_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    template_version: Mapped[int | None]
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
