"""Application factory: one FastAPI app around one :class:`~nurture.services.Services`."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from nurture.services import Services
from nurture.web import admin, api, health, public, unsubscribe, webhooks
from nurture.web.admin.auth import LoginRequiredError, current_staff, login_redirect
from nurture.web.admin.pages import render

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def _admin_error(request: Request, status: int, detail: str) -> Response:
    """Staff see a page, not JSON, and keep their navigation when they are signed in."""
    try:
        who = current_staff(request, request.app.state.services)
    except LoginRequiredError:
        who = None
    titles = {403: "Not allowed", 404: "Not found", 422: "Something is missing"}
    context = {
        "status": status,
        "title": titles.get(status, "Something went wrong"),
        "detail": detail,
    }
    return render(request, who, "error.html", context, status_code=status)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="nurture",
        summary="Consent-first e-mail and SMS lead nurture",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.services = services
    app.include_router(api.router)
    app.include_router(public.router)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        if request.url.path.startswith("/admin"):
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors()
            )
            return _admin_error(request, 422, detail)
        errors = [
            {
                "field": ".".join(
                    str(part) for part in item["loc"] if part not in {"body", "path", "query"}
                ),
                "message": item["msg"],
            }
            for item in error.errors()
        ]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(LoginRequiredError)
    async def _login_required(_request: Request, error: LoginRequiredError) -> Response:
        return RedirectResponse(login_redirect(error.next_path), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/admin"):
            return _admin_error(request, error.status_code, str(error.detail))
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    return app
