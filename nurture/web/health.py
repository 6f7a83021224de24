"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nurture.db.migrations import current_revision, head_revision
from nurture.ops.metrics import exposition
from nurture.web.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering (on the event loop itself: no I/O, no thread needed)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to take traffic: the database answers, its schema is current, the broker answers."""
    checks: dict[str, Any] = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
        current, head = current_revision(services.engine), head_revision()
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
    except SQLAlchemyError as error:
        checks["database"] = {"ok": False, "error": type(error).__name__}
    checks["broker"] = {"ok": services.broker.reachable()}
    ready = all(check["ok"] for check in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def require_metrics_token(request: Request, services: ServicesDep) -> None:
    """With NURTURE_METRICS_TOKEN set, only a scraper that sends it may read /metrics."""
    expected = services.settings.metrics_token
    if expected is None or not expected.get_secret_value():
        return  # open, as documented: bind the port privately instead
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            401,
            "metrics need the token (Authorization: Bearer <NURTURE_METRICS_TOKEN>)",
            {"WWW-Authenticate": "Bearer"},
        )


@router.get("/metrics", dependencies=[Depends(require_metrics_token)])
def metrics(services: ServicesDep) -> Response:
    return Response(
        exposition(services.read_sessions, services.broker.depths), media_type=CONTENT_TYPE_LATEST
    )
