"""No page of nurture may be shown inside another site's page, unless it says otherwise.

Framing lets another site dress nurture's forms in its own page and trick a click (a consent
box ticked without knowing it). Every response gets ``Content-Security-Policy:
frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (for browsers without CSP), except one
that already carries its own Content-Security-Policy: the embed (:mod:`nurture.web.embed`)
names the sites that may frame it. Pure ASGI middleware: it only adds two headers.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_FRAMED = (
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
)


class NoFramingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    for name, value in NOT_FRAMED:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
