"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nurture.metrics import exposition
from nurture.migrations import current_revision, head_revision
from nurture.ops import broker_reachable
from nurture.web.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and answering."""
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
    checks["broker"] = {"ok": broker_reachable(services.settings.resolved_broker_url)}
    ready = all(check["ok"] for check in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    return Response(exposition(services), media_type=CONTENT_TYPE_LATEST)
