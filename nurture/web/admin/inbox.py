"""The inbox: replies that need a person (crisis words, free text, a phrase read as an opt-out),
oldest first, until someone marks them handled."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture import clock
from nurture.content.staff_time import utc_text
from nurture.leads import story
from nurture.web.admin.auth import InboxStaff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/inbox")


@router.get("", response_class=HTMLResponse)
def waiting(request: Request, services: ServicesDep, who: InboxStaff) -> HTMLResponse:
    with services.read_sessions() as session:
        items, total = story.waiting_replies(session)
    return render(
        request,
        who,
        "inbox.html",
        {
            "items": items,
            "total": total,
            "crises": sum(1 for item in items if item.crisis),
            "utc": utc_text,
        },
    )


@router.post("/{inbound_id}/handled")
async def handled(
    request: Request, inbound_id: str, services: ServicesDep, who: InboxStaff
) -> Response:
    """For a reply that belongs to no lead; replies of a lead use the lead page's action."""
    check_csrf(who, await request.form())
    reply_id = story.parse_row_id(inbound_id)

    def act() -> bool:
        if reply_id is None:
            return False
        with services.sessions.begin() as session:
            reply = story.mark_handled(
                session, reply_id, lead_id=None, actor=who.actor, now=clock.utcnow()
            )
            return reply is not None

    if not await run_in_threadpool(act):
        raise HTTPException(404, "no such reply without a lead")
    return RedirectResponse("/admin/inbox?notice=handled", 303)
