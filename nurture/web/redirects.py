"""GET /r/{token}: a tracked link in a message (issue 15 §2, :mod:`nurture.content.tracked_links`).

A genuine token records the click and redirects (303) to the URL stored with that message;
anything else is a 404 page and no redirect, so this can never send someone to a URL nurture
did not put in the message itself. ``Referrer-Policy: no-referrer``: the page the person lands
on learns nothing about the token. No open pixel exists: only clicks are counted, and not
what a machine fetches (a HEAD, or a GET moments after the send: ``clicks.MACHINE_WINDOW``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from nurture import clock
from nurture.content import tracked_links
from nurture.funnel import clicks
from nurture.web.deps import ServicesDep
from nurture.web.templating import pages

router = APIRouter()
NO_REFERRER = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
def follow_link(token: str, request: Request, services: ServicesDep) -> Response:
    ref = tracked_links.verify(services.secret, token)
    url = None
    if ref is not None:
        # A HEAD is a link checker's (a mail scanner's); browsers follow a link with GET. It
        # only reads, so it never waits for (or takes) SQLite's write lock.
        counted = request.method == "GET"
        factory = services.sessions if counted else services.read_sessions
        with factory.begin() as session:
            url = clicks.follow(session, ref, now=clock.utcnow(), counted=counted)
    if url is None:
        return pages.TemplateResponse(
            request,
            "click_not_found.html",
            {"clinic": services.clinic},
            status_code=404,
            headers=NO_REFERRER,
        )
    return RedirectResponse(url, status_code=303, headers=NO_REFERRER)
