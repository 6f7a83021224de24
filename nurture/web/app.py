"""Application factory: one FastAPI app around one :class:`~nurture.runtime.Services`."""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from nurture.runtime import Services
from nurture.web import (
    admin,
    api,
    booking_webhooks,
    email_webhooks,
    embed,
    health,
    public,
    redirects,
    unsubscribe,
    webhooks,
)
from nurture.web.admin.auth import LoginRequiredError, current_staff, login_redirect
from nurture.web.admin.staff_page import render
from nurture.web.body_limits import BodyLimitMiddleware
from nurture.web.framing import NoFramingMiddleware
from nurture.web.json_body import JsonBodyError

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


async def _admin_error(request: Request, status: int, detail: str) -> Response:
    """Staff see a page, not JSON, and keep their navigation when they are signed in."""
    try:
        # A database read: in the thread pool, or one slow query stalls every request.
        who = await run_in_threadpool(current_staff, request, request.app.state.services)
    except LoginRequiredError:
        who = None
    titles = {403: "Not allowed", 404: "Not found", 422: "Something is missing"}
    context = {
        "status": status,
        "title": titles.get(status, "Something went wrong"),
        "detail": detail,
    }
    return render(request, who, "error.html", context, status_code=status)


def _raised_by_body_parsing(error: BaseException) -> bool:
    """Whether `error` came out of json.loads inside Starlette's ``Request.json()``.

    A handler that parses its body with ``await request.json()`` hands hostile input to the
    recursive parser: deep nesting raises RecursionError and a 5,000-digit number ValueError.
    That is the sender's fault (4xx); the same exceptions raised anywhere else are ours.
    """
    traceback: TracebackType | None = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code is Request.json.__code__:
            return True
        traceback = traceback.tb_next
    return False


def _body_error(message: str) -> JSONResponse:
    return JSONResponse(
        {
            "detail": "the request body has problems",
            "errors": [{"field": "body", "message": message}],
        },
        status_code=422,
    )


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="nurture",
        summary="Consent-first e-mail and SMS lead nurture",
        # The document describes only what other systems call: the JSON API and the webhooks.
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(NoFramingMiddleware)  # only /embed/ may be framed, where it is allowed
    app.include_router(api.router)
    app.include_router(webhooks.router)
    app.include_router(booking_webhooks.router)
    app.include_router(email_webhooks.router)
    app.include_router(public.router, include_in_schema=False)
    app.include_router(embed.router, include_in_schema=False)
    app.include_router(health.router, include_in_schema=False)
    app.include_router(unsubscribe.router, include_in_schema=False)
    app.include_router(redirects.router, include_in_schema=False)
    app.include_router(admin.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def _old_docs() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/api/openapi.json", include_in_schema=False)
    def _old_openapi() -> RedirectResponse:
        return RedirectResponse("/openapi.json")

    @app.exception_handler(JsonBodyError)
    async def _json_body_error(_request: Request, error: JsonBodyError) -> Response:
        return _body_error(str(error))

    @app.exception_handler(RecursionError)
    @app.exception_handler(ValueError)
    async def _unparsable_body(_request: Request, error: Exception) -> Response:
        # json.JSONDecodeError is a ValueError too. From anywhere else it is our bug: on to
        # the catch-all handler below (a logged 500), exactly as without this handler.
        if not _raised_by_body_parsing(error):
            raise error
        if isinstance(error, RecursionError):
            return _body_error("nested too deeply")
        return _body_error(f"not JSON we accept: {error}")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        if request.url.path.startswith("/admin"):
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors()
            )
            return await _admin_error(request, 422, detail)
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
            return await _admin_error(request, error.status_code, str(error.detail))
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    return app
