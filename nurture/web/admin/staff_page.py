"""Rendering admin pages with the staff member and their CSRF token always at hand."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from nurture.web.admin.auth import Staff
from nurture.web.templating import pages

NOTICES = {
    "saved": "Draft saved.",
    "draft-deleted": "Draft deleted.",
    "published": "Published: leads get this version from the next message on.",
    "test-sent": "Test sent to you.",
    "resumed": "Marketing resumed for this lead.",
    "handled": "Marked as handled.",
    "event": "Event recorded.",
    "user-saved": "User saved.",
    "paused": "Paused.",
    "resumed-pause": "Resumed.",
    "retried": "Queued again.",
    "settled": "Settled.",
    "purged": "Old message bodies deleted.",
}


def render(
    request: Request,
    who: Staff | None,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return pages.TemplateResponse(
        request,
        f"admin/{template}",
        {"staff": who, "csrf": who.csrf if who else "", "notice": notice, **context},
        status_code=status_code,
    )
