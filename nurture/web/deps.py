"""Request dependencies shared by the routers."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from nurture.db.models import ConsentSource
from nurture.leads.intake import RequestEvidence
from nurture.runtime import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    # async: it only reads app state, and a sync dependency costs every request a hop to the
    # thread pool and back (profiled at 9 % of a sign-up's CPU).
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services)]


def get_read_session(services: ServicesDep) -> Iterator[Session]:
    """A session for handlers that only read: it takes no write lock, and cannot write."""
    with services.read_sessions() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def require_api_key(request: Request, services: ServicesDep) -> None:
    expected = services.settings.api_key
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if expected is None:
        raise HTTPException(
            401, "the API is disabled: set NURTURE_API_KEY", {"WWW-Authenticate": "Bearer"}
        )
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            401,
            "missing or wrong API key (Authorization: Bearer …)",
            {"WWW-Authenticate": "Bearer"},
        )


def evidence_from(
    request: Request, *, page_url: str | None, source: ConsentSource
) -> RequestEvidence:
    return RequestEvidence(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        page_url=page_url or request.headers.get("referer"),
        source=source,
    )
