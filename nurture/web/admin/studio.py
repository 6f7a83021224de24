"""The template studio: list, edit with live preview, lint and a variable picker, save drafts,
review then publish, roll back, delete drafts, compare versions, send a test to oneself.

Publishing (and rolling back) is two steps: a page showing the diff against what is live, then
a Confirm POST naming the live version it was reviewed against. Texts with legal weight go live
only by an admin (``drafts.may_publish``).

Every handler is a plain ``def``: they touch the database and render templates, so FastAPI runs
them in its thread pool, never on the event loop. Only reading the request body is async, in a
dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from nurture.content import template_store
from nurture.content.lint import purposes_for
from nurture.content.rendering import BUDGET_EXCEEDED, RenderError
from nurture.content.samples import sample_leads
from nurture.content.template_store import TemplateStateError
from nurture.db import audit
from nurture.db.models import Channel, TemplateState, TemplateVersion
from nurture.preview import drafts
from nurture.preview.source_diff import hunks
from nurture.runtime import Services
from nurture.transports import DeliveryError
from nurture.web.admin.auth import Staff, TemplatesStaff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep
from nurture.web.json_body import JsonBodyError, parse_json

router = APIRouter(prefix="/templates")
MAX_SOURCE = 20_000


async def _read_form(request: Request) -> FormData:
    return await request.form()


async def _read_body(request: Request) -> bytes:
    return await request.body()


Form = Annotated[FormData, Depends(_read_form)]
RawBody = Annotated[bytes, Depends(_read_body)]


def _template(services: Services, channel: str, key: str) -> tuple[Channel, str]:
    try:
        parsed = Channel(channel)
    except ValueError:
        raise HTTPException(404, f"no channel {channel!r}") from None
    if (parsed, key) not in services.templates.available():
        raise HTTPException(404, f"no template {channel}/{key}")
    return parsed, key


def _sample(label: str | None) -> tuple[str, Any]:
    samples = sample_leads()
    chosen = label if label in samples else next(iter(samples))
    return chosen, samples[chosen]


def _preview_payload(
    services: Services, channel: Channel, key: str, source: str, sample: str | None
) -> dict[str, Any]:
    label, lead = _sample(sample)
    payload: dict[str, Any] = {
        "sample": label,
        "error": None,
        "subject": None,
        "text": "",
        "html": None,
        "sms": None,
    }
    try:
        shown = drafts.preview(services.studio, channel, key, source, lead)
        payload.update(subject=shown.subject, text=shown.text, html=shown.html)
        if shown.sms is not None:
            payload["sms"] = {
                "encoding": shown.sms.encoding,
                "units": shown.sms.units,
                "segments": shown.sms.segments,
                "characters": len(shown.text),
                "non_gsm": list(shown.sms.non_gsm_characters),
            }
    except RenderError as error:
        payload["error"] = str(error)
        if BUDGET_EXCEEDED in str(error):
            # Lint would only spend the budget again: answer within one.
            payload["findings"] = [{"level": "error", "message": str(error), "line": None}]
            return payload
    report = drafts.lint_source(services.studio, channel, key, source)
    payload["findings"] = [
        {"level": f.level, "message": f.message, "line": f.line} for f in report.findings
    ]
    return payload


@router.get("", response_class=HTMLResponse)
def list_templates(request: Request, services: ServicesDep, who: TemplatesStaff) -> HTMLResponse:
    rows = []
    with services.sessions() as session:
        for channel, key in sorted(
            services.templates.available(), key=lambda item: (item[0].value, item[1])
        ):
            history = template_store.versions(session, channel, key)
            live = next((v for v in history if v.state is TemplateState.PUBLISHED), None)
            rows.append(
                {
                    "channel": channel.value,
                    "key": key,
                    "live": live,
                    "latest": history[0] if history else None,
                    "drafts": sum(
                        1
                        for v in history
                        if v.state is TemplateState.DRAFT
                        and (live is None or v.version > live.version)
                    ),
                    "purposes": ", ".join(
                        sorted(p.value for p in purposes_for(services.catalog, channel, key))
                    ),
                }
            )
    return render(request, who, "templates.html", {"rows": rows})


@router.get("/{channel}/{key}", response_class=HTMLResponse)
def edit(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    version: int | None = None,
    sample: str | None = None,
) -> HTMLResponse:
    parsed, key = _template(services, channel, key)
    return _editor(request, services, who, parsed, key, version=version, sample=sample)


def _editor(
    request: Request,
    services: Services,
    who: Staff,
    channel: Channel,
    key: str,
    *,
    version: int | None,
    sample: str | None,
    source: str | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with services.sessions() as session:
        history = template_store.versions(session, channel, key)
    if version is not None and not any(v.version == version for v in history):
        raise HTTPException(404, f"{channel.value}/{key} has no version {version}")
    if version is None:  # the newest version that was not thrown away
        kept = [v for v in history if v.state is not TemplateState.DELETED]
        version = kept[0].version if kept else None
    current = next((v for v in history if v.version == version), None)
    if source is None:
        source = current.source if current else services.templates.get(channel, key).source
    label, lead = _sample(sample)
    return render(
        request,
        who,
        "template_edit.html",
        {
            "channel": channel.value,
            "key": key,
            "source": source,
            "history": history,
            "current": current,
            "live": next((v for v in history if v.state is TemplateState.PUBLISHED), None),
            "samples": list(sample_leads()),
            "preview": _preview_payload(services, channel, key, source, label),
            "variables": drafts.variable_groups(services.studio, channel, key, lead),
            "errors": errors or [],
            "purposes": sorted(p.value for p in purposes_for(services.catalog, channel, key)),
            "can_text": bool(who.user.phone),
            "admin_only": drafts.admin_only(services.studio, channel, key),
            "may_publish": drafts.may_publish(services.studio, channel, key, who.user.role),
        },
        status_code=status,
    )


@router.post("/{channel}/{key}/preview")
def live_preview(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    raw: RawBody,
) -> JSONResponse:
    """The preview and lint as JSON; 422 (with the same fields) when it does not render."""
    check_csrf(who, header=request.headers.get("x-csrf-token"))
    parsed, key = _template(services, channel, key)
    try:
        body = parse_json(raw)
    except JsonBodyError as error:
        raise HTTPException(422, f"the preview body: {error}") from None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("source"), str)
        or len(body["source"]) > MAX_SOURCE
    ):
        raise HTTPException(
            422, f"send {{'source': text of at most {MAX_SOURCE} characters, 'sample': label}}"
        )
    sample = body.get("sample") if isinstance(body.get("sample"), str) else None
    payload = _preview_payload(services, parsed, key, body["source"], sample)
    return JSONResponse(payload, status_code=422 if payload["error"] else 200)


@router.post("/{channel}/{key}/drafts")
def save(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    form: Form,
) -> Response:
    check_csrf(who, form)
    parsed, key = _template(services, channel, key)
    source = form.get("source")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE:
        return _editor(
            request,
            services,
            who,
            parsed,
            key,
            version=None,
            sample=None,
            source=str(source or ""),
            errors=[f"the template is empty or longer than {MAX_SOURCE} characters"],
            status=422,
        )
    draft = drafts.save_draft(
        services.studio, parsed, key, source.replace("\r\n", "\n"), author=who.actor
    )
    if form.get("then") == "publish":  # "Save and publish…": saved, now review it
        return RedirectResponse(
            f"/admin/templates/{parsed.value}/{key}/publish?version={draft.version}", 303
        )
    return RedirectResponse(
        f"/admin/templates/{parsed.value}/{key}?version={draft.version}&notice=saved", 303
    )


def _version_number(raw: object, where: str) -> int:
    if not isinstance(raw, str) or not raw.isdecimal():
        raise HTTPException(422, f"{where}: a version number is required")
    return int(raw)


@contextmanager
def _refusals_as_http() -> Iterator[None]:
    """The studio's refusals as the answers a page gives: not yours to publish (403), the
    version is in the wrong state (409), no such version (404)."""
    try:
        yield
    except drafts.AdminOnlyError as error:
        raise HTTPException(403, str(error)) from None
    except TemplateStateError as error:
        raise HTTPException(409, str(error)) from None
    except LookupError as error:
        raise HTTPException(404, str(error)) from None


def _review(
    services: Services, who: Staff, channel: Channel, key: str, version: int
) -> drafts.PublishReview:
    with _refusals_as_http():
        return drafts.review_publish(services.studio, channel, key, version, role=who.user.role)


def _review_page(
    request: Request,
    who: Staff,
    review: drafts.PublishReview,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    if not review.report.ok:
        status = 422
    return render(
        request,
        who,
        "template_publish.html",
        {
            "channel": review.version.channel.value,
            "key": review.version.key,
            "review": review,
            "errors": errors or [],
        },
        status_code=status,
    )


@router.get("/{channel}/{key}/publish", response_class=HTMLResponse)
def review_publish(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    version: str | None = None,
) -> HTMLResponse:
    """What publishing ``version`` would change against what is live, and a Confirm button."""
    parsed, key = _template(services, channel, key)
    number = _version_number(version, "?version=")
    return _review_page(request, who, _review(services, who, parsed, key, number))


@router.post("/{channel}/{key}/publish")
def publish(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    form: Form,
) -> Response:
    check_csrf(who, form)
    parsed, key = _template(services, channel, key)
    number = _version_number(form.get("version"), "version")
    reviewed = form.get("reviewed")
    if not isinstance(reviewed, str) or not reviewed:
        # Not from the review page: nothing goes live unseen, so show what would.
        review = _review(services, who, parsed, key, number)
        first = (
            "Not published: fix these first."
            if not review.report.ok
            else "Not published yet: check what would change, then confirm."
        )
        return _review_page(request, who, review, errors=[first], status=422)
    try:
        with _refusals_as_http():
            live = drafts.publish_version(
                services.studio,
                parsed,
                key,
                number,
                author=who.actor,
                role=who.user.role,
                reviewed=reviewed,
            )
    except drafts.PublishRefusedError as refused:
        errors = ["Not published: fix these first."] + [str(f) for f in refused.report.errors]
        return _editor(
            request,
            services,
            who,
            parsed,
            key,
            version=number,
            sample=None,
            errors=errors,
            status=422,
        )
    except drafts.StaleReviewError as stale:
        review = _review(services, who, parsed, key, number)
        return _review_page(request, who, review, errors=[str(stale)], status=409)
    return RedirectResponse(
        f"/admin/templates/{parsed.value}/{key}?version={live.version}&notice=published", 303
    )


def _draft(services: Services, channel: Channel, key: str, version: int) -> TemplateVersion:
    with services.sessions() as session:
        row = template_store.get_version(session, channel, key, version)
    if row is None:
        raise HTTPException(404, f"{channel.value}/{key} has no version {version}")
    if row.state is not TemplateState.DRAFT:
        raise HTTPException(
            409,
            f"{channel.value}/{key} version {version} is {row.state.value}: "
            "only a draft that was never published can be deleted",
        )
    return row


@router.get("/{channel}/{key}/versions/{version}/delete", response_class=HTMLResponse)
def review_delete(
    request: Request,
    channel: str,
    key: str,
    version: int,
    services: ServicesDep,
    who: TemplatesStaff,
) -> HTMLResponse:
    parsed, key = _template(services, channel, key)
    row = _draft(services, parsed, key, version)
    return render(
        request,
        who,
        "template_delete.html",
        {"channel": parsed.value, "key": key, "draft": row},
    )


@router.post("/{channel}/{key}/versions/{version}/delete")
def delete_draft(
    channel: str,
    key: str,
    version: int,
    services: ServicesDep,
    who: TemplatesStaff,
    form: Form,
) -> Response:
    check_csrf(who, form)
    parsed, key = _template(services, channel, key)
    with _refusals_as_http():
        drafts.delete_draft(services.studio, parsed, key, version, author=who.actor)
    return RedirectResponse(f"/admin/templates/{parsed.value}/{key}?notice=draft-deleted", 303)


@router.post("/{channel}/{key}/test")
def send_test(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    form: Form,
) -> Response:
    check_csrf(who, form)
    parsed, key = _template(services, channel, key)
    source = form.get("source")
    sample = form.get("sample")
    if not isinstance(source, str):
        raise HTTPException(422, "source: the template text is required")

    def refuse(message: str, status: int = 422) -> HTMLResponse:
        return _editor(
            request,
            services,
            who,
            parsed,
            key,
            version=None,
            sample=None,
            source=source,
            errors=[message],
            status=status,
        )

    to = who.user.email if parsed is Channel.EMAIL else who.user.phone
    if not to:
        return refuse("Add your mobile number to your account to receive test texts.")
    _label, lead = _sample(sample if isinstance(sample, str) else None)
    try:
        shown = drafts.preview(services.studio, parsed, key, source, lead)
        provider_id = drafts.send_test(services.studio, parsed, key, shown, to=to, author=who.actor)
    except RenderError as error:
        return refuse(f"Not sent: {error}")
    except DeliveryError as error:
        return refuse(f"Not sent: {error.reason}", status=502)

    def record() -> None:
        with services.sessions.begin() as session:
            audit.record(
                session,
                actor=who.actor,
                action="template.test_sent",
                details={"channel": parsed.value, "key": key, "provider_id": provider_id},
            )

    record()
    return RedirectResponse(f"/admin/templates/{parsed.value}/{key}?notice=test-sent", 303)


@router.get("/{channel}/{key}/diff", response_class=HTMLResponse)
def diff(
    request: Request,
    channel: str,
    key: str,
    services: ServicesDep,
    who: TemplatesStaff,
    a: int | None = None,
    b: int | None = None,
) -> HTMLResponse:
    parsed, key = _template(services, channel, key)
    if a is None or b is None:
        raise HTTPException(422, "give two versions: ?a=1&b=2")
    with services.sessions() as session:
        left = template_store.get_version(session, parsed, key, a)
        right = template_store.get_version(session, parsed, key, b)
    if left is None or right is None:
        raise HTTPException(404, f"{parsed.value}/{key} has no version {a if left is None else b}")
    return render(
        request,
        who,
        "template_diff.html",
        {
            "channel": parsed.value,
            "key": key,
            "a": left,
            "b": right,
            "changes": hunks(left.source, right.source),
        },
    )
