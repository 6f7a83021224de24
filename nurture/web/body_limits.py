"""Request body size limits, enforced as the body arrives (pure ASGI middleware).

Starlette reads a body whole into memory on ``request.body()``/``form()``, so a stranger
could make the web process hold gigabytes. This middleware refuses a declared
Content-Length over the limit before the application runs, and counts the bytes of a
chunked (or lying) body as ``receive()`` yields them, stopping at the limit.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
# The first prefix that matches a path decides its limit; anything else gets the default.
# The studio posts whole templates; the rest of the admin posts short forms; everything
# public (sign-ups, /consult, /u/ unsubscribe pages, Twilio webhooks) and the JSON API
# send a few fields.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/admin/templates", 1024 * KIB),
    ("/admin", 256 * KIB),
    # SendGrid posts its events in batches (up to a few hundred) that pass the default.
    ("/webhooks/email", 1024 * KIB),
)
DEFAULT_BODY_LIMIT = 64 * KIB


def body_limit_for(path: str) -> int:
    for prefix, limit in BODY_LIMITS:
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return DEFAULT_BODY_LIMIT


def too_large_message(limit: int) -> str:
    return f"the request body is larger than {limit // KIB} KiB, the limit here; send less"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive()`` once a body passes its limit.

    An HTTPException, so FastAPI's body parsing lets it through (it turns other errors into
    400) and the application's handler answers 413 the way it answers any HTTP error.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server (h11, httptools) has already refused a malformed one.
            return int(value) if value.isdigit() else None  # bytes: ASCII digits only
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large_message(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
