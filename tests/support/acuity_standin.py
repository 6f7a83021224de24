"""Local stand-ins for the booking APIs nurture reads over real HTTP: Acuity's
``GET /api/v1/appointments/{id}`` (HTTP basic auth, user id : API key) and Square's
``GET /v2/customers/{id}`` (``Authorization: Bearer``), answering as each documents.

Scripted failures (``fail_next``: that many 503s first) and slowness (``delay``) test the
timeout and the retries; every request is kept (``requests``)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.support.booking_signing import ACUITY_API_KEY, ACUITY_USER_ID, SQUARE_TOKEN


class BookingApiStandIn:
    def __init__(self) -> None:
        self.appointments: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.fail_next = 0
        self.delay = 0.0
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                standin._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def acuity_url(self) -> str:
        return f"{self.url}/api/v1"

    def __enter__(self) -> BookingApiStandIn:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(path)
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        if self.delay:
            time.sleep(self.delay)
        if failing:
            return _send(handler, 503, {"error": "unavailable"})
        auth = handler.headers.get("Authorization", "")
        if path.startswith("/api/v1/appointments/"):
            expected = base64.b64encode(f"{ACUITY_USER_ID}:{ACUITY_API_KEY}".encode()).decode()
            if auth != f"Basic {expected}":
                return _send(handler, 401, {"status_code": 401, "error": "unauthorized"})
            found = self.appointments.get(path.rsplit("/", 1)[1])
            if found is None:
                return _send(handler, 404, {"status_code": 404, "error": "not_found"})
            return _send(handler, 200, found)
        if path.startswith("/v2/customers/"):
            if auth != f"Bearer {SQUARE_TOKEN}":
                return _send(handler, 401, {"errors": [{"code": "UNAUTHORIZED"}]})
            customer = self.customers.get(path.rsplit("/", 1)[1])
            if customer is None:
                return _send(handler, 404, {"errors": [{"code": "NOT_FOUND"}]})
            return _send(handler, 200, {"customer": customer})
        return _send(handler, 404, {"error": "no such endpoint"})


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def square_customer(
    customer_id: str = "CUST1", *, email: str = "sq@example.com", phone: str = "+12085550166"
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "given_name": "Square",
        "family_name": "Person",
        "email_address": email,
        "phone_number": phone,
    }
