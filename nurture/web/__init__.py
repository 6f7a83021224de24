"""The FastAPI application: public pages, the JSON API, webhooks, health and metrics."""

from __future__ import annotations

from nurture.web.app import create_app

__all__ = ["create_app"]
