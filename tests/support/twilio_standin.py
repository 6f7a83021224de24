"""A local stand-in for Twilio's Messages REST API that the official ``twilio`` SDK talks to
over real HTTP.

Why a real server rather than mocking the SDK: the app's SMS transport depends on how the SDK
serialises requests, turns error bodies into ``TwilioRestException`` and surfaces timeouts as
``requests`` exceptions. Only real HTTP exercises all of that, so integration tests and
benchmarks point the SDK here with ``client.api.base_url = standin.url``.

What it does:

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` checks HTTP Basic auth, validates
  like Twilio (21604 / 21602 / 21603, ValidityPeriod 90014 / 90007), records the message and
  answers 201 with a Message resource shaped like Twilio's.
* ``GET .../Messages.json`` (filters ``To``, ``From``, ``DateSent``, ``DateSent<``,
  ``DateSent>``, paging with ``PageSize`` / ``Page``) and ``GET .../Messages/{Sid}.json``, so
  the SDK's ``messages.list()`` and ``messages(sid).fetch()`` work (e.g. to check whether a
  send whose answer never came was in fact accepted).
* Scripted failures (``fail_next``, ``fail_for``) and slowness (``delay``) for error and
  timeout handling tests.
* ``GET /v2/PhoneNumbers/{Number}?Fields=reassigned_number&LastVerifiedDate=YYYYMMDD``: Lookup
  v2's Reassigned Number package (the FCC Reassigned Numbers Database), answering the
  documented PhoneNumber resource with ``reassigned_number {last_verified_date,
  is_number_reassigned: "yes" | "no" | "no_data_available", error_code}``; ``"no"`` unless a
  test scripted the number (``reassigned``); failures and slowness with ``fail_lookups`` /
  ``delay_lookups``; every request is kept (``lookups``). Point ``client.lookups.base_url``
  here too. Not confirmed in Twilio's docs, so simplified: how Twilio answers a missing or
  malformed ``LastVerifiedDate`` (here a 400 naming it) and the format it echoes the date back
  in (here as sent).
* Status callbacks signed exactly as Twilio signs them (``send_status_callback``), also sent
  before the create call that made the message answers (``report_before_answer``: Twilio's
  callbacks race its API answer), and signed inbound-webhook headers (``signed_inbound``).

Deliberate simplifications: messages stay ``queued`` until a test sends a status callback
(which also updates what ``fetch``/``list`` return); the ``DateSent`` filters use
``date_sent`` when a callback set it and otherwise the time the message was received; no
media, no message updates or deletes.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import math
import socket
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
_PREFIX = f"/{API_VERSION}/Accounts/"
_LOOKUP_PREFIX = "/v2/PhoneNumbers/"
_DEFAULT_PAGE_SIZE = 50  # Twilio's default
_MAX_PAGE_SIZE = 1000  # Twilio's maximum
_MAX_VALIDITY_PERIOD = 36_000  # seconds; Twilio rejects more (error 90007)

# GSM 03.38: the basic set costs one septet per character, the extension table two.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

# Message states after which Twilio has a date_sent.
_SENT_STATES = frozenset({"sent", "delivered", "undelivered", "read"})


@dataclass(frozen=True)
class SentMessage:
    """A create request the stand-in accepted (answered 201), as the app sent it."""

    sid: str
    to: str
    from_: str | None
    body: str
    status_callback: str | None
    validity_period: int | None
    messaging_service_sid: str | None
    form: dict[str, str]  # the whole form body; a repeated key keeps its last value
    received_at: datetime  # aware, UTC


@dataclass(frozen=True)
class RejectedMessage:
    """A create request the stand-in refused: bad auth, unknown account, failed validation or a
    scripted failure. Kept apart from ``messages`` because Twilio never had these."""

    to: str | None
    from_: str | None
    body: str | None
    messaging_service_sid: str | None
    form: dict[str, str]
    status: int  # the HTTP status answered
    code: int | None  # the Twilio error code answered
    message: str
    received_at: datetime  # aware, UTC


@dataclass(frozen=True)
class EarlyReport:
    """A status callback the stand-in sent while the create call it is about had not been
    answered yet (see ``report_before_answer``)."""

    sid: str
    status: str
    error_code: int | None
    http_status: int | None  # what the app answered; None when it could not be reached
    token: str  # the I-Twilio-Idempotency-Token it carried
    problem: str | None  # why the app could not be reached


@dataclass(frozen=True)
class LookupRequest:
    """A Lookup v2 request the stand-in answered (whatever it answered)."""

    number: str  # as the path named it, e.g. "+12085550123"
    fields: str | None
    last_verified_date: str | None
    status: int  # the HTTP status answered
    received_at: datetime  # aware, UTC


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int | None
    message: str


@dataclass(frozen=True)
class _ScriptedReport:
    status: str
    error_code: int | None
    public_url_base: str | None


@dataclass
class _Delivery:
    """What Twilio would update on a message after it was created (via status callbacks)."""

    status: str = "queued"
    error_code: int | None = None
    date_sent: datetime | None = None
    date_updated: datetime | None = None


@dataclass
class _State:
    messages: list[SentMessage] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)
    deliveries: dict[str, _Delivery] = field(default_factory=dict)
    fail_queue: deque[_Failure] = field(default_factory=deque)
    fail_numbers: dict[str, _Failure] = field(default_factory=dict)
    early_queue: deque[_ScriptedReport] = field(default_factory=deque)
    early_reports: list[EarlyReport] = field(default_factory=list)
    delay: float = 0.0
    delay_numbers: dict[str, float] = field(default_factory=dict)
    lookups: list[LookupRequest] = field(default_factory=list)
    reassigned: dict[str, str] = field(default_factory=dict)  # number -> is_number_reassigned
    lookup_failures: deque[_Failure] = field(default_factory=deque)
    lookup_delay: float = 0.0
    during_lookup: Callable[[str], None] | None = None


class _ApiError(Exception):
    """Raised inside request handling to answer with Twilio's JSON error shape."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def twilio_error_body(status: int, code: int | None, message: str) -> dict[str, Any]:
    """Twilio's (legacy, non RFC 9457) error JSON, which the SDK turns into
    ``TwilioRestException`` with ``.status`` from HTTP and ``.code`` from the body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code if code is not None else status}",
        "status": status,
    }


def count_segments(body: str) -> int:
    """How many SMS segments Twilio would bill: GSM-7 160 / 153 per part, else UCS-2 70 / 67
    UTF-16 units per part (no smart encoding)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _rfc2822(moment: datetime | None) -> str | None:
    # Twilio writes "Thu, 30 Jul 2015 20:12:31 +0000"; the SDK's parser ignores the zone, so
    # it must be UTC.
    return None if moment is None else format_datetime(moment.astimezone(UTC))


def _now() -> datetime:
    return datetime.now(UTC)


class _StandInServer(ThreadingHTTPServer):
    daemon_threads = True  # a delayed handler must never keep the test process alive
    request_queue_size = 128  # benchmarks open many connections at once
    standin: TwilioStandIn


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the owning ``TwilioStandIn``; HTTP/1.1 keeps the SDK's pooled
    connections alive, which matters for benchmarks."""

    server: _StandInServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections give their thread back eventually
    server_version = "TwilioStandIn/1.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK and every keep-alive request costs ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: one stderr line per request drowns test output and slows benchmarks."""

    def do_GET(self) -> None:
        self._dispatch("GET", b"")

    def do_POST(self) -> None:
        self._dispatch("POST", self._read_body())

    def do_PUT(self) -> None:
        self._dispatch("PUT", self._read_body())

    def do_DELETE(self) -> None:
        self._dispatch("DELETE", self._read_body())

    def _read_body(self) -> bytes:
        # Always drain the body, even for requests about to be refused: with keep-alive, unread
        # bytes would be taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str, body: bytes) -> None:
        try:
            status, payload = self.server.standin._handle(method, self.path, self.headers, body)
        except _ApiError as error:
            status = error.status
            payload = twilio_error_body(error.status, error.code, error.message)
        except Exception as error:  # a stand-in bug: say so through the SDK and on stderr
            traceback.print_exc()
            status = 500
            payload = twilio_error_body(500, None, f"stand-in failure: {error!r}")
        self._send_json(status, payload)

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            # The client gave up (its timeout fired during delay()) or stop() cut the connection.
            self.close_connection = True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Twilio does not follow redirects for webhooks; a 3xx is reported as the status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class TwilioStandIn:
    """Twilio's Messages API on loopback, for one account.

    Use as a context manager, or call ``start()`` / ``stop()``. ``stop()`` then ``start()``
    again reuses the same port (simulating an outage) and keeps what was recorded.
    All recording and scripting methods are safe to call from any thread.
    """

    def __init__(
        self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = _State()
        self._server: _StandInServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._validator = RequestValidator(auth_token)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> TwilioStandIn:
        """Bind and serve in a daemon thread. Port 0 picks a free port once; a restart after
        ``stop()`` binds that same port so SDK clients already pointed here keep working."""
        if self._server is not None:
            raise RuntimeError("TwilioStandIn is already running")
        server = _StandInServer((self.host, self._port), _Handler)
        server.standin = self
        self._port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"twilio-standin:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any handler sleeping in ``delay()`` and drop open connections, so
        a stop never waits for a slow request. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None and self._port == 0:
            raise RuntimeError("TwilioStandIn has no port until start()")
        return self._port

    @property
    def url(self) -> str:
        """What to assign to ``client.api.base_url``."""
        if self._server is None:
            raise RuntimeError("TwilioStandIn is not running; call start() first")
        return f"http://{self.host}:{self._port}"

    # ----------------------------------------------------------------- recorded traffic

    @property
    def messages(self) -> list[SentMessage]:
        """Accepted messages, oldest first (a copy)."""
        with self._lock:
            return list(self._state.messages)

    @property
    def rejected(self) -> list[RejectedMessage]:
        """Refused create requests, oldest first (a copy)."""
        with self._lock:
            return list(self._state.rejected)

    def messages_to(self, number: str) -> list[SentMessage]:
        """Accepted messages whose To is exactly ``number``, oldest first."""
        with self._lock:
            return [m for m in self._state.messages if m.to == number]

    def message(self, sid: str) -> SentMessage:
        """The accepted message with this sid (KeyError if there is none)."""
        with self._lock:
            for candidate in self._state.messages:
                if candidate.sid == sid:
                    return candidate
        raise KeyError(f"no message {sid} at the Twilio stand-in")

    def settings(self) -> dict[str, Any]:
        """Settings overrides that send texts through the official SDK to this stand-in."""
        return {
            "sms_backend": "twilio",
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from": "+12085550100",
            "twilio_api_url": self.url,
        }

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SentMessage]:
        """Block until at least ``count`` messages were accepted, then return all of them.

        Senders run in other threads or processes, so tests wait for an outcome instead of
        sleeping. Raises AssertionError naming what did arrive when time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._state.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [f"{m.to}: {m.body[:40]!r}" for m in self._state.messages]
                    refused = [f"{r.to}: {r.status} {r.code}" for r in self._state.rejected]
                    raise AssertionError(
                        f"expected at least {count} SMS at the Twilio stand-in within "
                        f"{timeout}s, got {len(got)}: {got}; rejected {len(refused)}: {refused}"
                    )
                self._changed.wait(min(remaining, 0.1))
            return list(self._state.messages)

    @property
    def lookups(self) -> list[LookupRequest]:
        """Lookup v2 requests, oldest first (a copy)."""
        with self._lock:
            return list(self._state.lookups)

    @property
    def early_reports(self) -> list[EarlyReport]:
        """Callbacks sent by ``report_before_answer``, oldest first (a copy)."""
        with self._lock:
            return list(self._state.early_reports)

    def reset(self) -> None:
        """Forget recorded messages, rejections, scripted failures, early reports and delay."""
        with self._lock:
            self._state = _State()

    # ----------------------------------------------------------------- scripting

    def fail_next(
        self,
        status: int,
        code: int | None,
        message: str = "Scripted failure from the Twilio stand-in",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` authenticated create calls with this Twilio error.

        They land in ``rejected``, not ``messages``. ``code=None`` answers ``"code": null``, which
        the SDK passes on as ``TwilioRestException.code is None``. Scripted failures take
        precedence over ``fail_for`` and over the stand-in's own validation."""
        with self._lock:
            self._state.fail_queue.extend([_Failure(status, code, message)] * times)

    def fail_for(
        self,
        number: str,
        status: int,
        code: int | None,
        message: str = "Scripted failure for this number from the Twilio stand-in",
    ) -> None:
        """Answer every create call to this exact To number with this error, until reset()."""
        with self._lock:
            self._state.fail_numbers[number] = _Failure(status, code, message)

    def report_before_answer(
        self,
        status: str,
        error_code: int | None = None,
        *,
        public_url_base: str | None = None,
        times: int = 1,
    ) -> None:
        """For the next ``times`` accepted create calls, POST a status callback (signed, to the
        message's StatusCallback, as ``send_status_callback`` does) after recording the message
        and before answering the create call: the client learns the sid only after the app
        has had the report. Each one lands in ``early_reports``; the create call is answered
        whatever the app replied (or if it could not be reached)."""
        with self._lock:
            scripted = _ScriptedReport(status, error_code, public_url_base)
            self._state.early_queue.extend([scripted] * times)

    def reassigned(self, number: str, answer: str) -> None:
        """What Lookup's Reassigned Number package says of ``number`` from now on:
        ``"yes"``, ``"no"`` (the default for every number) or ``"no_data_available"``."""
        if answer not in {"yes", "no", "no_data_available"}:
            raise ValueError(f"is_number_reassigned is yes, no or no_data_available: {answer!r}")
        with self._lock:
            self._state.reassigned[number] = answer

    def fail_lookups(
        self,
        status: int,
        code: int | None,
        message: str = "Scripted Lookup failure from the Twilio stand-in",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` authenticated Lookup requests with this Twilio error."""
        with self._lock:
            self._state.lookup_failures.extend([_Failure(status, code, message)] * times)

    def during_lookups(self, hook: Callable[[str], None] | None) -> None:
        """Call ``hook(number)`` in the handler thread while each Lookup request waits for its
        answer (e.g. to look at the app's database meanwhile); None turns it off."""
        with self._lock:
            self._state.during_lookup = hook

    def delay_lookups(self, seconds: float) -> None:
        """Make each Lookup request wait this long before answering (0 turns it off)."""
        with self._lock:
            self._state.lookup_delay = max(0.0, seconds)

    def delay(self, seconds: float) -> None:
        """Make each create call wait this long before answering (0 turns it off).

        The message is recorded *before* the wait, as a Twilio that accepted a message but whose
        answer was lost would have it: a client that times out has an ambiguous outcome, and
        ``list()``/``messages`` show the message exists. ``stop()`` cuts the wait short."""
        with self._lock:
            self._state.delay = max(0.0, seconds)

    def delay_for(self, number: str, seconds: float) -> None:
        """Like :meth:`delay`, for create calls to this exact To number only (a provider that
        hangs on one message of a batch)."""
        with self._lock:
            self._state.delay_numbers[number] = max(0.0, seconds)

    # ----------------------------------------------------------------- webhooks

    def send_status_callback(
        self,
        message_sid: str,
        status: str,
        error_code: int | None = None,
        *,
        public_url_base: str | None = None,
        idempotency_token: str | None = None,
        timeout: float = 15.0,
    ) -> tuple[int, str]:
        """POST a status callback for a recorded message, as Twilio would, and return
        ``(http_status, idempotency_token)``.

        The signature always covers the StatusCallback URL recorded with the message, because
        that is the URL Twilio signs and the one the app validates against (its public URL).
        ``public_url_base`` (e.g. ``"http://127.0.0.1:8001"``) only changes where the POST
        actually goes: it replaces the scheme and host[:port] of the callback URL, keeping path
        and query. Use it when the recorded callback is the app's public address but the app
        under test listens locally. Pass a previous ``idempotency_token`` to replay a delivery
        the way Twilio retries one. The message's status, error_code and date_sent (for sent and
        later states) are updated first, so ``fetch()`` agrees with the callback.

        A 4xx/5xx answer is returned, not raised; failing to connect raises URLError.
        """
        sent = self.message(message_sid)
        if not sent.status_callback:
            raise ValueError(f"message {message_sid} was sent without a StatusCallback")
        now = _now()
        with self._lock:
            delivery = self._state.deliveries.setdefault(message_sid, _Delivery())
            delivery.status = status
            delivery.error_code = error_code
            delivery.date_updated = now
            if status in _SENT_STATES and delivery.date_sent is None:
                delivery.date_sent = now
        params = {
            "MessageSid": sent.sid,
            "SmsSid": sent.sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": sent.to,
            "ApiVersion": API_VERSION,
        }
        if sent.from_:
            params["From"] = sent.from_
        if sent.messaging_service_sid:
            params["MessagingServiceSid"] = sent.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        token = idempotency_token or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": self._validator.compute_signature(sent.status_callback, params),
            "I-Twilio-Idempotency-Token": token,
        }
        target = sent.status_callback
        if public_url_base is not None:
            target = _rebase(sent.status_callback, public_url_base)
        request = urllib.request.Request(  # noqa: S310 - http(s) URLs the test chose
            target, data=urlencode(params).encode(), headers=headers, method="POST"
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
                return int(response.status), token
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), token

    def signed_inbound(self, url_to_sign: str, params: dict[str, str]) -> dict[str, str]:
        """Headers for posting ``params`` (form-encoded) to an inbound-SMS webhook as Twilio
        would: ``X-Twilio-Signature`` over ``url_to_sign`` (the app's public URL for the hook),
        a fresh ``I-Twilio-Idempotency-Token`` and the form Content-Type."""
        return {
            "X-Twilio-Signature": self._validator.compute_signature(url_to_sign, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "Content-Type": "application/x-www-form-urlencoded",
        }

    # ----------------------------------------------------------------- request handling

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _handle(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(raw_path)
        path = parts.path
        if path.startswith(_LOOKUP_PREFIX):
            return self._lookup(method, path, parts.query, headers)
        if not path.startswith(_PREFIX):
            raise _not_found(path)
        account, _, rest = path[len(_PREFIX) :].partition("/")
        is_create = method == "POST" and rest == "Messages.json"
        form = dict(parse_qsl(body.decode(), keep_blank_values=True)) if is_create else {}
        try:
            self._check_auth(headers.get("Authorization"))
            if account != self.account_sid:
                raise _not_found(path)
        except _ApiError as error:
            if is_create:
                self._reject(form, error, _now())
            raise
        if rest == "Messages.json":
            if is_create:
                return self._create(account, form)
            if method == "GET":
                return 200, self._list(account, parts.query)
            raise _ApiError(405, 20004, "Method not allowed")
        if rest.startswith("Messages/") and rest.endswith(".json") and rest.count("/") == 1:
            if method != "GET":
                raise _ApiError(405, 20004, "Method not allowed")
            return 200, self._fetch(rest[len("Messages/") : -len(".json")], path)
        raise _not_found(path)

    def _lookup(
        self, method: str, path: str, query: str, headers: Any
    ) -> tuple[int, dict[str, Any]]:
        """Lookup v2: ``GET /v2/PhoneNumbers/{Number}``, the basic answer plus the Reassigned
        Number package when ``Fields`` asks for it."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        number = unquote(path[len(_LOOKUP_PREFIX) :])
        fields = params.get("Fields")
        verified = params.get("LastVerifiedDate")

        def keep(status: int) -> None:
            request = LookupRequest(number, fields, verified, status, _now())
            with self._changed:
                self._state.lookups.append(request)
                self._changed.notify_all()

        try:
            self._check_auth(headers.get("Authorization"))
            if method != "GET":
                raise _ApiError(405, 20004, "Method not allowed")
            if not number or "/" in number:
                raise _not_found(path)
            with self._lock:
                scripted = (
                    self._state.lookup_failures.popleft() if self._state.lookup_failures else None
                )
                delay = self._state.lookup_delay
                said = self._state.reassigned.get(number, "no")
                hook = self._state.during_lookup
            if hook is not None:
                hook(number)
            self._wait(delay)
            if scripted is not None:
                raise _ApiError(scripted.status, scripted.code, scripted.message)
            wanted = {f.strip() for f in (fields or "").split(",") if f.strip()}
            package: dict[str, Any] | None = None
            if "reassigned_number" in wanted:
                if not verified or len(verified) != 8 or not verified.isdigit():
                    raise _ApiError(400, None, "LastVerifiedDate must be YYYYMMDD")
                package = {
                    "last_verified_date": verified,
                    "is_number_reassigned": said,
                    "error_code": None,
                }
        except _ApiError as error:
            keep(error.status)
            raise
        keep(200)
        return 200, {
            "calling_country_code": "1",
            "country_code": "US",
            "phone_number": number,
            "national_format": number,
            "valid": True,
            "validation_errors": [],
            "caller_name": None,
            "sim_swap": None,
            "call_forwarding": None,
            "line_type_intelligence": None,
            "line_status": None,
            "identity_match": None,
            "reassigned_number": package,
            "sms_pumping_risk": None,
            "phone_number_quality_score": None,
            "pre_fill": None,
            "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{number}",
        }

    def _check_auth(self, header: str | None) -> None:
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        supplied = b""
        if header and header.startswith("Basic "):
            try:
                supplied = base64.b64decode(header[len("Basic ") :], validate=True)
            except ValueError:
                supplied = b""
        if not hmac.compare_digest(supplied, expected):
            raise _ApiError(401, 20003, "Authenticate")

    def _create(self, account: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        received_at = _now()
        to = form.get("To") or None
        from_ = form.get("From") or None
        body = form.get("Body")
        service = form.get("MessagingServiceSid") or None
        callback = form.get("StatusCallback") or None

        def refuse(status: int, code: int | None, message: str) -> _ApiError:
            error = _ApiError(status, code, message)
            self._wait(self._reject(form, error, received_at))
            return error

        with self._lock:
            scripted = self._state.fail_queue.popleft() if self._state.fail_queue else None
            if scripted is None and to is not None:
                scripted = self._state.fail_numbers.get(to)
        if scripted is not None:
            raise refuse(scripted.status, scripted.code, scripted.message)
        if to is None:
            raise refuse(400, 21604, "A 'To' phone number is required.")
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            raise refuse(400, 21602, "Message body is required.")
        if from_ is None and service is None:
            raise refuse(400, 21603, "The source 'From' phone number is required to send an SMS")
        validity: int | None = None
        if form.get("ValidityPeriod"):
            try:
                validity = int(form["ValidityPeriod"])
            except ValueError:
                validity = None
            if validity is None or validity < 1:
                raise refuse(400, 90014, "Validity Period should be positive integer")
            if validity > _MAX_VALIDITY_PERIOD:
                raise refuse(400, 90007, "Invalid validity period value")

        sid = "SM" + uuid.uuid4().hex
        sent = SentMessage(
            sid=sid,
            to=to,
            from_=from_,
            body=body or "",
            status_callback=callback,
            validity_period=validity,
            messaging_service_sid=service,
            form=form,
            received_at=received_at,
        )
        with self._changed:
            self._state.messages.append(sent)
            self._state.deliveries[sid] = _Delivery(date_updated=received_at)
            self._changed.notify_all()
            delay = self._state.delay_numbers.get(to, self._state.delay)
            # The answer says `queued`, as Twilio's does: it was made before the report left.
            resource = self._resource(sent)
            early = self._state.early_queue.popleft() if self._state.early_queue else None
        if early is not None:
            self._report_early(sid, early)
        self._wait(delay)
        return 201, resource

    def _report_early(self, sid: str, scripted: _ScriptedReport) -> None:
        token = str(uuid.uuid4())
        http_status: int | None = None
        problem: str | None = None
        try:
            http_status, _ = self.send_status_callback(
                sid,
                scripted.status,
                scripted.error_code,
                public_url_base=scripted.public_url_base,
                idempotency_token=token,
            )
        except (OSError, ValueError) as error:  # unreachable, timed out, or no StatusCallback
            problem = repr(error)
        report = EarlyReport(sid, scripted.status, scripted.error_code, http_status, token, problem)
        with self._changed:
            self._state.early_reports.append(report)
            self._changed.notify_all()

    def _reject(self, form: dict[str, str], error: _ApiError, received_at: datetime) -> float:
        """Record a refused create call; returns the delay to apply before answering."""
        rejected = RejectedMessage(
            to=form.get("To") or None,
            from_=form.get("From") or None,
            body=form.get("Body"),
            messaging_service_sid=form.get("MessagingServiceSid") or None,
            form=form,
            status=error.status,
            code=error.code,
            message=error.message,
            received_at=received_at,
        )
        with self._changed:
            self._state.rejected.append(rejected)
            self._changed.notify_all()
            return self._state.delay

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _resource(self, sent: SentMessage) -> dict[str, Any]:
        """Twilio's Message resource JSON. Caller holds the lock."""
        delivery = self._state.deliveries.get(sent.sid) or _Delivery()
        uri = f"{_PREFIX}{self.account_sid}/Messages/{sent.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": sent.body,
            "date_created": _rfc2822(sent.received_at),
            "date_sent": _rfc2822(delivery.date_sent),
            "date_updated": _rfc2822(delivery.date_updated or sent.received_at),
            "direction": "outbound-api",
            "error_code": delivery.error_code,
            "error_message": None,
            "from": sent.from_,
            "messaging_service_sid": sent.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(count_segments(sent.body)),
            "price": None,
            "price_unit": "USD",
            "sid": sent.sid,
            "status": delivery.status,
            "subresource_uris": {
                "media": f"{_PREFIX}{self.account_sid}/Messages/{sent.sid}/Media.json",
                "feedback": f"{_PREFIX}{self.account_sid}/Messages/{sent.sid}/Feedback.json",
            },
            "to": sent.to,
            "uri": uri,
        }

    def _fetch(self, sid: str, path: str) -> dict[str, Any]:
        with self._lock:
            for sent in self._state.messages:
                if sent.sid == sid:
                    return self._resource(sent)
        raise _not_found(path)

    def _list(self, account: str, query: str) -> dict[str, Any]:
        params = dict(parse_qsl(query, keep_blank_values=True))
        page_size = _int_param(params, "PageSize", _DEFAULT_PAGE_SIZE, 1, _MAX_PAGE_SIZE)
        page = _int_param(params, "Page", 0, 0, None)
        filters = {
            key: params[key]
            for key in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if params.get(key)
        }
        date_tests = [
            (op, _parse_date_param(key, filters[key]))
            for key, op in (("DateSent", "="), ("DateSent<", "<"), ("DateSent>", ">"))
            if key in filters
        ]
        with self._lock:
            matching = []
            for sent in reversed(self._state.messages):  # newest first, as Twilio lists
                if "To" in filters and sent.to != filters["To"]:
                    continue
                if "From" in filters and sent.from_ != filters["From"]:
                    continue
                delivery = self._state.deliveries.get(sent.sid)
                moment = (delivery.date_sent if delivery else None) or sent.received_at
                if all(_date_matches(moment, op, bound) for op, bound in date_tests):
                    matching.append(self._resource(sent))
        start = page * page_size
        records = matching[start : start + page_size]
        base = f"{_PREFIX}{account}/Messages.json"

        def page_uri(number: int) -> str:
            return f"{base}?{urlencode({**filters, 'PageSize': page_size, 'Page': number})}"

        return {
            "messages": records,
            "end": start + len(records) - 1 if records else start,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if start + page_size < len(matching) else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }


def _not_found(path: str) -> _ApiError:
    return _ApiError(404, 20404, f"The requested resource {path} was not found")


def _rebase(url: str, base: str) -> str:
    """``url`` with the scheme and host[:port] of ``base``."""
    target, new = urlsplit(url), urlsplit(base)
    if not new.scheme or not new.netloc or new.path not in ("", "/"):
        raise ValueError(f"public_url_base must be scheme://host[:port], got {base!r}")
    return urlunsplit((new.scheme, new.netloc, target.path, target.query, target.fragment))


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError(400, None, f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise _ApiError(400, None, f"{name} out of range: {value}")
    return value


def _parse_date_param(name: str, raw: str) -> date | datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (what the SDK sends for date *and* datetime
    arguments: it formats both with a time)."""
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _ApiError(400, None, f"{name} must be YYYY-MM-DD, got {raw!r}") from None


def _date_matches(moment: datetime, op: str, bound: date | datetime) -> bool:
    """``DateSent`` matches the calendar day (UTC) even when the SDK sent a time; ``DateSent<``
    and ``DateSent>`` are inclusive, by day for a date and by second for a datetime."""
    moment = moment.astimezone(UTC)
    if op == "=" or not isinstance(bound, datetime):
        day = bound.date() if isinstance(bound, datetime) else bound
        if op == "=":
            return moment.date() == day
        return moment.date() <= day if op == "<" else moment.date() >= day
    moment = moment.replace(microsecond=0)
    return moment <= bound if op == "<" else moment >= bound
