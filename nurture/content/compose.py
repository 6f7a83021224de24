"""What a message says: the render context for a lead, and rendering a template for it.

Used by the worker when it sends, and by previews and simulations, so that what marketing sees
is exactly what the lead will get.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.consent import tokens
from nurture.content import tracked_links
from nurture.content.rendering import (
    ClinicView,
    LeadView,
    Links,
    RenderContext,
    Renderer,
    consult_view,
)
from nurture.content.template_store import TemplateRecord, TemplateStore
from nurture.db.models import Channel, Lead, Purpose
from nurture.program import windows


@dataclass(frozen=True)
class RenderedContent:
    channel: Channel
    template_version: int | None
    subject: str | None  # e-mail only
    text: str  # the SMS body, or the e-mail's text part
    html: str | None  # e-mail only


@dataclass(frozen=True)
class Writer:
    """What writing a message for a lead needs, and nothing else: the clinic, where links point,
    the key that signs them, the templates and the sandboxed renderer. Built once per process by
    `nurture.runtime`; the send path, replies, previews and simulations all take one."""

    clinic: Clinic
    public_url: str
    secret: bytes
    templates: TemplateStore
    renderer: Renderer

    def context(
        self, lead: Lead, purpose: Purpose, *, alert: dict[str, Any] | None = None
    ) -> RenderContext:
        return context_for(
            lead,
            clinic=self.clinic,
            public_url=self.public_url,
            secret=self.secret,
            purpose=purpose,
            alert=alert,
        )

    def render(
        self,
        channel: Channel,
        template_key: str,
        context: RenderContext,
        *,
        session: Session | None = None,
    ) -> RenderedContent:
        return render(
            self.templates, self.renderer, channel, template_key, context, session=session
        )

    def render_record(self, record: TemplateRecord, context: RenderContext) -> RenderedContent:
        return render_record(self.templates, self.renderer, record, context)

    def track(
        self,
        rendered: RenderedContent,
        context: RenderContext,
        *,
        message_id: int,
        known: Sequence[str] = (),
    ) -> tuple[RenderedContent, list[str]]:
        """``rendered`` with its links through ``/r/{token}``, and the original links by index
        (to store with the message). ``known``: the links an earlier attempt stored."""
        table = tracked_links.LinkTable(
            self.public_url,
            self.secret,
            message_id,
            keep=tracked_links.keep_set([context.links.unsubscribe, context.links.preferences]),
            links=list(known),
        )
        return tracked(rendered, table), table.links

    def track_preview(self, text: str, context: RenderContext) -> str:
        """A text as the send path will write it: a token of the real length in each link (for
        a preview, so the segment count shown is the one sent)."""
        return tracked_links.representative(
            text,
            public_url=self.public_url,
            keep=[context.links.unsubscribe, context.links.preferences],
        )


def clinic_view(clinic: Clinic) -> ClinicView:
    return ClinicView(
        name=clinic.name,
        sms_program_name=clinic.sms_program_name,
        phone=clinic.phone,
        email=str(clinic.email),
        address=clinic.address,
        booking_url=str(clinic.booking_url),
        website_url=str(clinic.website_url),
        timezone=clinic.timezone,
        sms_frequency=clinic.sms_frequency,
        staffed_hours=clinic.staffed_hours,
    )


def unsubscribe_url(public_url: str, secret: bytes, lead: Lead) -> str:
    return f"{public_url}/u/{tokens.sign(secret, lead.id, Purpose.MARKETING)}"


def context_for(
    lead: Lead,
    *,
    clinic: Clinic,
    public_url: str,
    secret: bytes,
    purpose: Purpose,
    alert: dict[str, Any] | None = None,
) -> RenderContext:
    zone = windows.zones_of(lead, clinic.zone).shown
    unsubscribe = unsubscribe_url(public_url, secret, lead)
    return RenderContext(
        lead=LeadView(
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            phone=lead.phone,
            stage=lead.stage.value,
            attributes=dict(lead.attributes or {}),
        ),
        clinic=clinic_view(clinic),
        consult=consult_view(
            lead.consult_at, zone, confirmed=lead.consult_confirmed_at is not None
        ),
        links=Links(unsubscribe=unsubscribe, preferences=unsubscribe, book=str(clinic.booking_url)),
        marketing=purpose is Purpose.MARKETING,
        audience="staff" if purpose is Purpose.ALERT else "lead",
        alert=dict(alert or {}),
    )


def tracked(rendered: RenderedContent, table: tracked_links.LinkTable) -> RenderedContent:
    """Both parts rewritten with one table: a link in the HTML and the text shares its index."""
    html = table.rewrite_html(rendered.html) if rendered.html is not None else None
    return replace(rendered, text=table.rewrite_text(rendered.text), html=html)


def render(
    store: TemplateStore,
    renderer: Renderer,
    channel: Channel,
    template_key: str,
    context: RenderContext,
    *,
    session: Session | None = None,
) -> RenderedContent:
    """Render the current version of a template; raises RenderError or TemplateNotFoundError."""
    record = store.get(channel, template_key, session=session)
    return render_record(store, renderer, record, context)


def render_record(
    store: TemplateStore, renderer: Renderer, record: TemplateRecord, context: RenderContext
) -> RenderedContent:
    """Render a template already loaded: no database work, so no transaction need be open."""
    name = f"{record.channel.value}/{record.key}"
    if record.channel is Channel.SMS:
        body = renderer.render_sms(record.source, context, name=name)
        return RenderedContent(record.channel, record.version, None, body, None)
    email = renderer.render_email(record.source, store.email_layouts(), context, name=name)
    return RenderedContent(record.channel, record.version, email.subject, email.text, email.html)
