"""The template studio's operations, shared by the admin UI and the CLI: preview, lint,
save a draft, publish (refused on lint errors), send a test to oneself.

These are use cases, not domain rules: each owns its unit of work, because publishing first
renders (lint) and a render never runs inside an open transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from nurture import clock, content
from nurture.config.policy import Policy
from nurture.content import Writer, template_store
from nurture.content.lint import LintReport, LintTarget, lint_template, purposes_for
from nurture.content.samples import SAMPLE_ALERT
from nurture.content.sms_encoding import SmsShape, measure
from nurture.db.models import Channel, Lead, Purpose, TemplateVersion
from nurture.program.sequences import Catalog
from nurture.transports import EmailTransport, OutgoingEmail, OutgoingSms, SmsTransport


@dataclass(frozen=True)
class Studio:
    """What the studio's use cases need; `nurture.runtime` builds one per process."""

    writer: Writer
    catalog: Catalog
    policy: Policy
    sessions: sessionmaker[Session]
    email: EmailTransport
    sms: SmsTransport


class PublishRefusedError(Exception):
    def __init__(self, report: LintReport) -> None:
        super().__init__("\n".join(str(f) for f in report.errors))
        self.report = report


@dataclass(frozen=True)
class Preview:
    subject: str | None
    text: str
    html: str | None
    sms: SmsShape | None


def source_of(studio: Studio, channel: Channel, key: str, version: int | None) -> str:
    """A version's source; None means the one published now (or the file, if never imported)."""
    if version is None:
        return studio.writer.templates.get(channel, key).source
    with studio.sessions() as session:
        row = template_store.get_version(session, channel, key, version)
    if row is None:
        raise LookupError(f"{channel.value}/{key} has no version {version}")
    return row.source


def main_purpose(studio: Studio, channel: Channel, key: str) -> Purpose:
    purposes = purposes_for(studio.catalog, channel, key)
    for preferred in (Purpose.MARKETING, Purpose.OPTIN, Purpose.CARE, Purpose.ALERT):
        if preferred in purposes:
            return preferred
    return Purpose.CARE


def preview(studio: Studio, channel: Channel, key: str, source: str, lead: Lead) -> Preview:
    """Render ``source`` for a lead exactly as the worker would; raises RenderError."""
    purpose = main_purpose(studio, channel, key)
    context = content.context_for(
        lead,
        clinic=studio.writer.clinic,
        public_url=studio.writer.public_url,
        secret=studio.writer.secret,
        purpose=purpose,
        alert=SAMPLE_ALERT if purpose is Purpose.ALERT else None,
    )
    name = f"{channel.value}/{key}"
    if channel is Channel.SMS:
        body = studio.writer.renderer.render_sms(source, context, name=name)
        return Preview(None, body, None, measure(body))
    email = studio.writer.renderer.render_email(
        source, studio.writer.templates.email_layouts(), context, name=name
    )
    return Preview(email.subject, email.text, email.html, None)


def lint_source(studio: Studio, channel: Channel, key: str, source: str) -> LintReport:
    return lint_template(
        LintTarget(channel, key, source, purposes_for(studio.catalog, channel, key)),
        renderer=studio.writer.renderer,
        layouts=studio.writer.templates.email_layouts(),
        policy=studio.policy,
        clinic=studio.writer.clinic,
        public_url=studio.writer.public_url,
    )


def lint_current(studio: Studio, channel: Channel, key: str) -> LintReport:
    return lint_source(studio, channel, key, studio.writer.templates.get(channel, key).source)


def save_draft(
    studio: Studio, channel: Channel, key: str, source: str, *, author: str
) -> TemplateVersion:
    with studio.sessions.begin() as session:
        return template_store.save_draft(
            session, channel, key, source, author=author, now=clock.utcnow()
        )


def publish_version(
    studio: Studio, channel: Channel, key: str, version: int, *, author: str
) -> TemplateVersion:
    """Publish after lint passes; PublishRefusedError carries the errors."""
    report = lint_source(studio, channel, key, source_of(studio, channel, key, version))
    if not report.ok:
        raise PublishRefusedError(report)
    with studio.sessions.begin() as session:
        return template_store.publish(
            session, channel, key, version, author=author, now=clock.utcnow()
        )


def send_test(
    studio: Studio, channel: Channel, key: str, shown: Preview, *, to: str, author: str
) -> str:
    """Send a rendered preview to a staff member through the real transport; the provider id."""
    reference = f"test-{channel.value}-{key}"
    if channel is Channel.EMAIL:
        assert shown.subject is not None
        assert shown.html is not None
        return studio.email.send(
            OutgoingEmail(
                to=to,
                subject=f"[TEST] {shown.subject}",
                text=shown.text,
                html=shown.html,
                reference=reference,
            )
        )
    return studio.sms.send(OutgoingSms(to=to, body=shown.text, reference=reference))
