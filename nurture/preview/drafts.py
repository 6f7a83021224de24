"""The template studio's operations, shared by the admin UI and the CLI: preview, lint,
save a draft, review then publish (refused on lint errors), delete a draft, send a test to
oneself.

These are use cases, not domain rules: each owns its unit of work, because publishing first
renders (lint) and a render never runs inside an open transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from nurture import clock, content
from nurture.config.policy import Policy
from nurture.content import Writer, template_store, variables
from nurture.content.lint import (
    LintReport,
    LintTarget,
    lint_template,
    purposes_for,
    sent_by_sequences,
)
from nurture.content.rendering import RenderContext
from nurture.content.samples import SAMPLE_ALERT
from nurture.content.sms_encoding import SmsShape, measure
from nurture.content.template_store import TemplateRecord, TemplateStateError
from nurture.db.models import (
    Channel,
    Lead,
    Purpose,
    StaffRole,
    TemplateState,
    TemplateVersion,
)
from nurture.preview.source_diff import DiffLine, hunks
from nurture.program.sequence_store import SequenceSource
from nurture.transports import EmailTransport, OutgoingEmail, OutgoingSms, SmsTransport


@dataclass(frozen=True)
class Studio:
    """What the studio's use cases need; `nurture.runtime` builds one per process."""

    writer: Writer
    sequences: SequenceSource
    policy: Policy
    sessions: sessionmaker[Session]
    email: EmailTransport
    sms: SmsTransport


class PublishRefusedError(Exception):
    def __init__(self, report: LintReport) -> None:
        super().__init__("\n".join(str(f) for f in report.errors))
        self.report = report


class AdminOnlyError(PermissionError):
    """A text with legal weight goes live only when an admin publishes it."""

    def __init__(self, channel: Channel, key: str) -> None:
        super().__init__(
            f"{channel.value}/{key} carries legal weight: an admin must publish this one"
        )


class StaleReviewError(Exception):
    """What is live changed after the publisher reviewed the diff: the diff they confirmed is
    no longer what would change."""

    def __init__(self, channel: Channel, key: str) -> None:
        super().__init__(
            f"{channel.value}/{key} changed since you reviewed it (someone else published): "
            "review the changes again"
        )


def admin_only(studio: Studio, channel: Channel, key: str) -> bool:
    """The texts that must keep their wording (policy.yaml content.required: the opt-in
    confirmation, STOP, HELP and crisis replies) are the ones with legal weight: one list, so
    lint's wording check and who may publish can never disagree."""
    return f"{channel.value}/{key}" in studio.policy.content.required


def may_publish(studio: Studio, channel: Channel, key: str, role: StaffRole | None) -> bool:
    """``role`` None is a caller with no staff account (the CLI, run on the server by whoever
    runs it): an admin action."""
    return role is None or role is StaffRole.ADMIN or not admin_only(studio, channel, key)


def live(
    studio: Studio, channel: Channel, key: str, *, session: Session | None = None
) -> TemplateRecord:
    """What leads get now: the published version, or the file when nothing is imported yet."""
    return studio.writer.templates.get(channel, key, session=session)


def review_token(record: TemplateRecord) -> str:
    """Names what was live when a publisher reviewed the diff; publish checks it still is."""
    return f"{record.version or 'file'}:{template_store.file_hash(record.source)}"


@dataclass(frozen=True)
class PublishReview:
    """What publishing a version would do, shown before it is confirmed."""

    version: TemplateVersion
    live: TemplateRecord
    changes: list[list[DiffLine]]  # hunks of the live source against the version
    report: LintReport
    token: str  # review_token(live)

    @property
    def rollback(self) -> bool:
        return self.version.state is not TemplateState.DRAFT


def _publishable(studio: Studio, channel: Channel, key: str, version: int) -> TemplateVersion:
    with studio.sessions() as session:
        row = template_store.get_version(session, channel, key, version)
    if row is None:
        raise LookupError(f"{channel.value}/{key} has no version {version}")
    if row.state is TemplateState.DELETED:
        raise TemplateStateError(
            f"{channel.value}/{key} version {version} is a deleted draft: it cannot be published"
        )
    return row


def review_publish(
    studio: Studio, channel: Channel, key: str, version: int, *, role: StaffRole | None
) -> PublishReview:
    """The diff against what is live and the lint report; raises AdminOnlyError,
    LookupError or TemplateStateError. Reads, then renders with no transaction open."""
    if not may_publish(studio, channel, key, role):
        raise AdminOnlyError(channel, key)
    row = _publishable(studio, channel, key, version)
    now_live = live(studio, channel, key)
    return PublishReview(
        version=row,
        live=now_live,
        changes=hunks(now_live.source, row.source),
        report=lint_source(studio, channel, key, row.source),
        token=review_token(now_live),
    )


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
    purposes = purposes_for(studio.sequences.current(), channel, key)
    for preferred in (Purpose.MARKETING, Purpose.OPTIN, Purpose.CARE, Purpose.ALERT):
        if preferred in purposes:
            return preferred
    return Purpose.CARE


def _context(studio: Studio, channel: Channel, key: str, lead: Lead) -> RenderContext:
    purpose = main_purpose(studio, channel, key)
    return content.context_for(
        lead,
        clinic=studio.writer.clinic,
        public_url=studio.writer.public_url,
        secret=studio.writer.secret,
        purpose=purpose,
        alert=SAMPLE_ALERT if purpose is Purpose.ALERT else None,
    )


def preview(studio: Studio, channel: Channel, key: str, source: str, lead: Lead) -> Preview:
    """Render ``source`` for a lead exactly as the worker would; raises RenderError."""
    context = _context(studio, channel, key, lead)
    name = f"{channel.value}/{key}"
    if channel is Channel.SMS:
        body = studio.writer.renderer.render_sms(source, context, name=name)
        if sent_by_sequences(studio.sequences.current(), channel, key):
            # The send path puts a sequence text's links through /r/{token}: count those.
            body = studio.writer.track_preview(body, context)
        return Preview(None, body, None, measure(body))
    email = studio.writer.renderer.render_email(
        source, studio.writer.templates.email_layouts(), context, name=name
    )
    return Preview(email.subject, email.text, email.html, None)


def lint_source(studio: Studio, channel: Channel, key: str, source: str) -> LintReport:
    return lint_template(
        LintTarget(
            channel,
            key,
            source,
            purposes_for(studio.sequences.current(), channel, key),
            tracked=sent_by_sequences(studio.sequences.current(), channel, key),
        ),
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
    studio: Studio,
    channel: Channel,
    key: str,
    version: int,
    *,
    author: str,
    role: StaffRole | None = None,
    reviewed: str | None = None,
) -> TemplateVersion:
    """Publish after lint passes; PublishRefusedError carries the errors.

    ``role`` is the publisher's (None: no staff account, see may_publish); AdminOnlyError
    when it may not. ``reviewed`` is the review_token the publisher confirmed: when given,
    StaleReviewError if something else went live since. The CLI passes neither."""
    if not may_publish(studio, channel, key, role):
        raise AdminOnlyError(channel, key)
    row = _publishable(studio, channel, key, version)
    report = lint_source(studio, channel, key, row.source)
    if not report.ok:
        raise PublishRefusedError(report)
    with studio.sessions.begin() as session:
        if (
            reviewed is not None
            and review_token(live(studio, channel, key, session=session)) != reviewed
        ):
            raise StaleReviewError(channel, key)
        return template_store.publish(
            session, channel, key, version, author=author, now=clock.utcnow(), reviewed=reviewed
        )


def delete_draft(
    studio: Studio, channel: Channel, key: str, version: int, *, author: str
) -> TemplateVersion:
    """Raises LookupError, or TemplateStateError for anything but a draft. Anyone who may
    save a draft may delete one, legal texts included: a draft never reaches a lead."""
    with studio.sessions.begin() as session:
        return template_store.delete_draft(session, channel, key, version, author=author)


def variable_groups(
    studio: Studio, channel: Channel, key: str, lead: Lead
) -> list[variables.VariableGroup]:
    """The picker's list, from the context a preview of this template renders with."""
    return variables.groups(_context(studio, channel, key, lead))


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
