"""The staff UI at /admin: server-rendered pages, a little progressive JavaScript, no SPA."""

from __future__ import annotations

from fastapi import APIRouter

from nurture.web.admin import (
    account,
    funnel_pages,
    inbox,
    leads_pages,
    ops_pages,
    sequence_editor,
    sequences_pages,
    studio,
    users_pages,
)

router = APIRouter(prefix="/admin")
for module in (
    account,
    studio,
    sequence_editor,
    sequences_pages,
    leads_pages,
    inbox,
    users_pages,
    ops_pages,
):
    router.include_router(module.router)
router.include_router(funnel_pages.router)

__all__ = ["router"]
