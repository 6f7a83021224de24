"""The sign-up form inside another site's page, for sites that cannot call a server.

``<iframe src="https://nurture.example.org/embed/consult">`` shows the very form of
``/consult``, posted to the same handler (:func:`nurture.web.public.submit_form`), so a sign-up
through it records the same consent evidence. Browsers show it only inside the origins of
``NURTURE_EMBED_ORIGINS`` (``Content-Security-Policy: frame-ancestors``); with none configured
the embed does not exist (404). Every other page refuses to be framed (:mod:`framing`).

The page that embedded the form is what the browser's Referer said when the iframe loaded, as
given (browsers often send only the origin): the form posts it back in its address
(``?embedded_in=``), so the consent's ``page_url`` names both the form and that page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from nurture.web import public
from nurture.web.deps import ServicesDep
from nurture.web.templating import pages

router = APIRouter()
PATH = "/embed/consult"
# A Referer longer than this is no page address anyone typed: kept to this length.
LONGEST_PAGE = 2000
OFF = (
    "The embeddable sign-up form is turned off: NURTURE_EMBED_ORIGINS names no site that may "
    "show it. The form is at /consult."
)


def embedding_page(request: Request) -> str | None:
    """The page the form is shown in: the iframe's Referer when it loads, then carried along
    in the form's own address."""
    given = request.query_params.get("embedded_in")
    if given is None and request.method == "GET":
        given = request.headers.get("referer")
    return given[:LONGEST_PAGE] if given else None


def _action(request: Request) -> str:
    page = embedding_page(request)
    return f"{PATH}?{urlencode({'embedded_in': page})}" if page else PATH


EMBEDDED = public.FormPlace(action=_action, thanks_path=f"{PATH}/thanks")


def _framed_by(origins: tuple[str, ...], response: Response) -> Response:
    response.headers["Content-Security-Policy"] = f"frame-ancestors {' '.join(origins)}"
    return response


def _off() -> Response:
    return PlainTextResponse(OFF, status_code=404)


@router.get(PATH, response_class=HTMLResponse)
def embedded_form(request: Request, services: ServicesDep) -> Response:
    origins = services.settings.embed_origins
    if not origins:
        return _off()
    return _framed_by(origins, public.form_page(request, services, place=EMBEDDED))


@router.post(PATH, response_class=HTMLResponse)
async def embedded_submit(request: Request, services: ServicesDep) -> Response:
    origins = services.settings.embed_origins
    if not origins:
        return _off()
    return _framed_by(origins, await public.submit_form(request, services, shown_on=EMBEDDED))


@router.get(f"{PATH}/thanks", response_class=HTMLResponse)
def embedded_thanks(request: Request, services: ServicesDep) -> Response:
    origins = services.settings.embed_origins
    if not origins:
        return _off()
    response = pages.TemplateResponse(request, "thanks.html", {"clinic": services.clinic})
    return _framed_by(origins, response)
