"""Celery wiring only; every task calls one function of the domain (``nurture``)."""

from workers.app import app

__all__ = ["app"]
