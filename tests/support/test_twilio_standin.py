"""The Twilio stand-in, driven by the official twilio SDK over real HTTP.

These prove the stand-in is faithful where the app depends on it: what the SDK sends arrives
and is recorded, Twilio-shaped errors become ``TwilioRestException`` with the right status and
code, list/fetch pages parse, callbacks carry signatures ``RequestValidator`` accepts, and a
slow answer surfaces as a ``requests`` timeout.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.support.twilio_standin import SentMessage, TwilioStandIn, count_segments

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "standin-auth-token-0123456789abc"
SENDER = "+15005550006"
LEAD = "+15555550101"
OTHER_LEAD = "+15555550102"
SERVICE_SID = "MG" + "3c" * 16

ClientFactory = Callable[..., Client]


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def make_client(standin: TwilioStandIn) -> Iterator[ClientFactory]:
    """SDK clients pointed at the stand-in the way the app points them (api.base_url)."""
    made: list[Client] = []

    def factory(
        *,
        auth_token: str = AUTH_TOKEN,
        timeout: float | None = None,
        account_sid: str = ACCOUNT_SID,
    ) -> Client:
        client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        client.api.base_url = standin.url
        made.append(client)
        return client

    yield factory
    for client in made:  # pooled keep-alive sockets would otherwise leak (ResourceWarning)
        client.http_client.session.close()


@pytest.fixture
def client(make_client: ClientFactory) -> Client:
    return make_client()


def send(
    client: Client, to: str = LEAD, body: str = "Your consult is booked.", **extra: Any
) -> Any:
    kwargs: dict[str, Any] = {"from_": SENDER} | extra
    return client.messages.create(to=to, body=body, **kwargs)


@dataclass(frozen=True)
class Callback:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


class CallbackReceiver:
    """The app's end of status callbacks: records each POST and answers ``reply_status``."""

    def __init__(self) -> None:
        self.received: queue.Queue[Callback] = queue.Queue()
        self.reply_status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                receiver.received.put(Callback(self.path, dict(self.headers.items()), form))
                self.send_response(receiver.reply_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 5.0) -> Callback:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.close()


# ------------------------------------------------------------------------- create


def test_create_via_sdk_answers_a_twilio_shaped_message_and_records_every_field(
    standin: TwilioStandIn, client: Client
) -> None:
    message = client.messages.create(
        to=LEAD,
        from_=SENDER,
        body="Your consult is booked.",
        status_callback="https://nurture.example/webhooks/twilio/status",
        validity_period=600,
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == ACCOUNT_SID
    assert (message.to, message.from_, message.body) == (LEAD, SENDER, "Your consult is booked.")
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.num_segments == "1"
    assert message.api_version == "2010-04-01"
    assert message.date_sent is None
    assert message.error_code is None
    assert message.price is None
    assert message.messaging_service_sid is None
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    assert isinstance(message.date_created, datetime)
    assert abs(message.date_created - datetime.now(UTC)) < timedelta(minutes=1)

    [sent] = standin.messages
    assert sent == SentMessage(
        sid=message.sid,
        to=LEAD,
        from_=SENDER,
        body="Your consult is booked.",
        status_callback="https://nurture.example/webhooks/twilio/status",
        validity_period=600,
        messaging_service_sid=None,
        form=sent.form,
        received_at=sent.received_at,
    )
    assert sent.form["ValidityPeriod"] == "600"
    assert sent.form["StatusCallback"] == "https://nurture.example/webhooks/twilio/status"
    assert sent.received_at.tzinfo is UTC
    assert standin.messages_to(LEAD) == [sent]
    assert standin.messages_to(OTHER_LEAD) == []
    assert standin.rejected == []


def test_messaging_service_sid_is_accepted_instead_of_from(
    standin: TwilioStandIn, client: Client
) -> None:
    message = client.messages.create(to=LEAD, body="Hi", messaging_service_sid=SERVICE_SID)

    assert message.messaging_service_sid == SERVICE_SID
    assert message.from_ is None
    [sent] = standin.messages
    assert (sent.messaging_service_sid, sent.from_) == (SERVICE_SID, None)


def test_wrong_auth_token_raises_401_code_20003_and_sends_nothing(
    standin: TwilioStandIn, make_client: ClientFactory
) -> None:
    intruder = make_client(auth_token="not-the-token")

    with pytest.raises(TwilioRestException) as caught:
        send(intruder)

    assert caught.value.status == 401
    assert caught.value.code == 20003
    assert standin.messages == []
    assert [(r.status, r.code) for r in standin.rejected] == [(401, 20003)]


def test_account_sid_in_path_other_than_the_stand_ins_is_404(
    standin: TwilioStandIn, client: Client
) -> None:
    other = client.api.v2010.accounts("AC" + "0" * 32)

    with pytest.raises(TwilioRestException) as caught:
        other.messages.create(to=LEAD, from_=SENDER, body="Hi")

    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert standin.messages == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "", "from_": SENDER, "body": "Hi"}, 21604),
        ({"to": LEAD, "from_": SENDER}, 21602),
        ({"to": LEAD, "body": "Hi"}, 21603),
        ({"to": LEAD, "from_": SENDER, "body": "Hi", "validity_period": 0}, 90014),
        ({"to": LEAD, "from_": SENDER, "body": "Hi", "validity_period": 36_001}, 90007),
    ],
    ids=["no-to", "no-body", "no-sender", "validity-zero", "validity-too-long"],
)
def test_invalid_create_is_refused_with_twilios_400_code(
    standin: TwilioStandIn, client: Client, fields: dict[str, Any], code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**fields)

    assert (caught.value.status, caught.value.code) == (400, code)
    assert standin.messages == []
    assert [r.code for r in standin.rejected] == [code]


def test_num_segments_counts_gsm7_extension_and_ucs2_like_twilio() -> None:
    assert count_segments("a" * 160) == 1
    assert count_segments("a" * 161) == 2
    assert count_segments("€" * 80) == 1  # extension characters cost two septets
    assert count_segments("€" * 81) == 2
    assert count_segments("д" * 70) == 1  # outside GSM-7: UCS-2
    assert count_segments("д" * 71) == 2
    assert count_segments("😀" * 35) == 1  # two UTF-16 units each
    assert count_segments("a" * 306) == 2
    assert count_segments("a" * 307) == 3


# ------------------------------------------------------------------------- scripted failures


def test_fail_next_400_21610_raises_that_status_and_code_and_records_nothing_sent(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert caught.value.status == 400
    assert caught.value.code == 21610
    assert "Attempt to send to unsubscribed recipient" in caught.value.msg
    assert standin.messages == []
    [rejected] = standin.rejected
    assert (rejected.to, rejected.status, rejected.code) == (LEAD, 400, 21610)

    send(client)  # only the next call was scripted
    assert len(standin.messages) == 1


def test_fail_next_times_fails_exactly_that_many_calls(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.fail_next(429, 20429, "Too Many Requests", times=2)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            send(client)
        assert (caught.value.status, caught.value.code) == (429, 20429)
    send(client)

    assert len(standin.rejected) == 2
    assert len(standin.messages) == 1


def test_fail_for_number_fails_every_send_to_it_and_none_to_others(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.fail_for(OTHER_LEAD, 400, 21211)

    for _ in range(3):
        with pytest.raises(TwilioRestException) as caught:
            send(client, to=OTHER_LEAD)
        assert (caught.value.status, caught.value.code) == (400, 21211)
    send(client, to=LEAD)

    assert [m.to for m in standin.messages] == [LEAD]
    assert [r.to for r in standin.rejected] == [OTHER_LEAD] * 3


def test_server_error_500_without_code_surfaces_as_status_500_and_code_none(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.fail_next(500, None, "An internal server error has occurred")

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert caught.value.status == 500
    assert caught.value.code is None
    assert standin.messages == []


def test_reset_forgets_messages_rejections_and_scripted_failures(
    standin: TwilioStandIn, client: Client
) -> None:
    send(client)
    standin.fail_for(OTHER_LEAD, 400, 21211)
    standin.fail_next(500, 20500)
    with pytest.raises(TwilioRestException):
        send(client)

    standin.reset()

    assert (standin.messages, standin.rejected) == ([], [])
    send(client, to=OTHER_LEAD)
    assert [m.to for m in standin.messages] == [OTHER_LEAD]


# ------------------------------------------------------------------------- list and fetch


def test_list_filtered_by_to_returns_only_that_number_newest_first(
    standin: TwilioStandIn, client: Client
) -> None:
    first = send(client, to=LEAD, body="one")
    send(client, to=OTHER_LEAD, body="other")
    second = send(client, to=LEAD, body="two")

    listed = client.messages.list(to=LEAD, limit=20)

    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert all(m.to == LEAD for m in listed)
    assert len(client.messages.list(limit=20)) == 3
    assert client.messages.list(from_="+15005550999", limit=20) == []


def test_list_follows_next_page_uri_across_pages(standin: TwilioStandIn, client: Client) -> None:
    sids = [send(client, body=f"n{i}").sid for i in range(5)]

    listed = client.messages.list(to=LEAD, page_size=2)

    assert [m.sid for m in listed] == sids[::-1]
    page = client.messages.page(to=LEAD, page_size=2)
    assert page.next_page_url is not None
    assert page.previous_page_url is None


def test_list_filters_by_date_sent_day_and_inclusive_bounds(
    standin: TwilioStandIn, client: Client
) -> None:
    send(client)
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)

    # The SDK formats dates with a time ("YYYY-MM-DDT00:00:00Z"); DateSent still means the day.
    assert len(client.messages.list(date_sent=today, limit=20)) == 1
    assert client.messages.list(date_sent=yesterday, limit=20) == []
    assert client.messages.list(date_sent_before=yesterday, limit=20) == []
    after = datetime.now(UTC) - timedelta(minutes=1)
    assert len(client.messages.list(date_sent_after=after, limit=20)) == 1
    assert client.messages.list(date_sent_after=after + timedelta(hours=1), limit=20) == []
    assert isinstance(today, date)


def test_fetch_by_sid_returns_the_message_and_an_unknown_sid_is_404_code_20404(
    standin: TwilioStandIn, client: Client
) -> None:
    created = send(client, body="fetch me")

    fetched = client.messages(created.sid).fetch()

    assert (fetched.sid, fetched.body, fetched.status) == (created.sid, "fetch me", "queued")
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


# ------------------------------------------------------------------------- webhooks


def test_status_callback_reaches_the_app_with_a_signature_request_validator_accepts(
    standin: TwilioStandIn, client: Client, receiver: CallbackReceiver
) -> None:
    callback_url = f"{receiver.base}/webhooks/twilio/status"
    message = send(client, status_callback=callback_url)

    status, token = standin.send_status_callback(message.sid, "undelivered", 30003)

    assert status == 204
    got = receiver.next()
    assert got.path == "/webhooks/twilio/status"
    assert got.headers["I-Twilio-Idempotency-Token"] == token
    assert RequestValidator(AUTH_TOKEN).validate(
        callback_url, got.form, got.headers["X-Twilio-Signature"]
    )
    assert not RequestValidator("some-other-token").validate(
        callback_url, got.form, got.headers["X-Twilio-Signature"]
    )
    assert got.form == {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "To": LEAD,
        "From": SENDER,
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
    }
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert fetched.date_sent is not None


def test_status_callback_with_public_url_base_posts_locally_but_signs_the_public_url(
    standin: TwilioStandIn, client: Client, receiver: CallbackReceiver
) -> None:
    public_url = "https://nurture.example/webhooks/twilio/status?lead=7"
    message = send(client, status_callback=public_url)

    status, _ = standin.send_status_callback(
        message.sid, "delivered", public_url_base=receiver.base
    )

    assert status == 204
    got = receiver.next()
    assert got.path == "/webhooks/twilio/status?lead=7"
    signature = got.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(public_url, got.form, signature)
    assert not RequestValidator(AUTH_TOKEN).validate(
        f"{receiver.base}/webhooks/twilio/status?lead=7", got.form, signature
    )
    assert "ErrorCode" not in got.form


def test_status_callback_replay_reuses_the_idempotency_token_and_reports_app_errors(
    standin: TwilioStandIn, client: Client, receiver: CallbackReceiver
) -> None:
    message = send(client, status_callback=f"{receiver.base}/hook")
    _, token = standin.send_status_callback(message.sid, "sent")
    receiver.reply_status = 500

    status, replayed = standin.send_status_callback(message.sid, "sent", idempotency_token=token)

    assert (status, replayed) == (500, token)
    tokens = [receiver.next().headers["I-Twilio-Idempotency-Token"] for _ in range(2)]
    assert tokens == [token, token]


def test_signed_inbound_headers_carry_a_valid_signature_for_the_url_given(
    standin: TwilioStandIn,
) -> None:
    url = "https://nurture.example/webhooks/twilio/inbound"
    params = {"From": LEAD, "To": SENDER, "Body": "STOP", "MessageSid": "SM" + "1" * 32}

    headers = standin.signed_inbound(url, params)

    assert RequestValidator(AUTH_TOKEN).validate(url, params, headers["X-Twilio-Signature"])
    assert not RequestValidator(AUTH_TOKEN).validate(
        url, {**params, "Body": "START"}, headers["X-Twilio-Signature"]
    )
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["I-Twilio-Idempotency-Token"]


# ------------------------------------------------------------------------- timing and lifecycle


def test_delay_makes_a_short_timeout_sdk_client_raise_read_timeout_yet_the_message_exists(
    standin: TwilioStandIn, make_client: ClientFactory
) -> None:
    impatient = make_client(timeout=0.5)
    standin.delay(3.0)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(impatient)
    assert time.monotonic() - started < 2.0

    # Accepted before the slow answer: the outcome-unknown case the app must reconcile.
    assert len(standin.wait_for(1, timeout=1.0)) == 1
    started = time.monotonic()
    standin.stop()  # wakes the handler still sleeping in delay()
    assert time.monotonic() - started < 2.0


def test_wait_for_returns_messages_sent_from_other_threads(
    standin: TwilioStandIn, make_client: ClientFactory
) -> None:
    clients = [make_client() for _ in range(4)]
    threads = [threading.Thread(target=lambda c=c: [send(c) for _ in range(5)]) for c in clients]
    for thread in threads:
        thread.start()

    got = standin.wait_for(20, timeout=10.0)

    for thread in threads:
        thread.join()
    assert len({m.sid for m in got}) == 20


def test_wait_for_times_out_with_an_assertion_naming_what_arrived(
    standin: TwilioStandIn, client: Client
) -> None:
    send(client, body="only one")

    with pytest.raises(AssertionError, match=r"expected at least 2 SMS .* got 1: .*only one"):
        standin.wait_for(2, timeout=0.2)


def test_restart_keeps_the_port_and_what_was_recorded(
    standin: TwilioStandIn, client: Client
) -> None:
    url = standin.url
    send(client)

    standin.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client)
    standin.start()
    send(client)

    assert standin.url == url
    assert len(standin.messages) == 2


def test_report_before_answer_reaches_the_app_while_the_create_call_is_unanswered(
    standin: TwilioStandIn, client: Client, receiver: CallbackReceiver
) -> None:
    callback_url = "https://nurture.example/webhooks/twilio/status?message=7&attempt=2"
    answered = threading.Event()
    seen_before_answer: list[bool] = []
    original_put = receiver.received.put

    def note_order(item: Callback, *args: Any, **kwargs: Any) -> None:
        seen_before_answer.append(not answered.is_set())
        original_put(item, *args, **kwargs)

    receiver.received.put = note_order  # type: ignore[method-assign]
    standin.report_before_answer("undelivered", 30005, public_url_base=receiver.base)

    message = send(client, status_callback=callback_url)
    answered.set()

    assert seen_before_answer == [True]
    assert message.status == "queued"  # the answer was made before the report left
    got = receiver.next()
    assert got.path == "/webhooks/twilio/status?message=7&attempt=2"
    assert (got.form["MessageSid"], got.form["MessageStatus"]) == (message.sid, "undelivered")
    assert got.form["ErrorCode"] == "30005"
    assert RequestValidator(AUTH_TOKEN).validate(
        callback_url, got.form, got.headers["X-Twilio-Signature"]
    )
    [early] = standin.early_reports
    assert (early.sid, early.status, early.error_code) == (message.sid, "undelivered", 30005)
    assert (early.http_status, early.problem) == (204, None)
    assert early.token == got.headers["I-Twilio-Idempotency-Token"]
    send(client, status_callback=callback_url)  # only the next create call was scripted
    assert len(standin.early_reports) == 1


def test_report_before_answer_still_answers_the_create_call_when_the_app_is_unreachable(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.report_before_answer("delivered")

    message = send(client, status_callback="http://127.0.0.1:9/webhooks/twilio/status")

    [early] = standin.early_reports
    assert early.sid == message.sid
    assert early.http_status is None and early.problem


# --- Lookup v2: the Reassigned Number package ------------------------------------------------


def lookup_client(standin: TwilioStandIn, *, timeout: float | None = None) -> Client:
    """An SDK client whose Lookup domain is pointed at the stand-in, as the app points it."""
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=timeout))
    client.lookups.base_url = standin.url
    return client


def test_lookup_answers_the_reassigned_number_package_the_sdk_parses(
    standin: TwilioStandIn,
) -> None:
    standin.reassigned(LEAD, "yes")
    client = lookup_client(standin)
    found = client.lookups.v2.phone_numbers(LEAD).fetch(
        fields="reassigned_number", last_verified_date="20250601"
    )
    assert found.phone_number == LEAD
    assert found.reassigned_number == {
        "last_verified_date": "20250601",
        "is_number_reassigned": "yes",
        "error_code": None,
    }
    other = client.lookups.v2.phone_numbers(OTHER_LEAD).fetch(
        fields="reassigned_number", last_verified_date="20250601"
    )
    assert other.reassigned_number["is_number_reassigned"] == "no"  # the default
    plain = client.lookups.v2.phone_numbers(OTHER_LEAD).fetch()
    assert plain.reassigned_number is None  # not asked for, not answered
    [first, second, third] = standin.lookups
    assert (first.number, first.fields, first.last_verified_date, first.status) == (
        LEAD,
        "reassigned_number",
        "20250601",
        200,
    )
    assert (second.number, third.fields) == (OTHER_LEAD, None)


def test_lookup_refuses_bad_auth_and_a_missing_date_and_fails_when_scripted(
    standin: TwilioStandIn,
) -> None:
    wrong = Client(ACCOUNT_SID, "wrong-token", http_client=TwilioHttpClient())
    wrong.lookups.base_url = standin.url
    with pytest.raises(TwilioRestException) as refused:
        wrong.lookups.v2.phone_numbers(LEAD).fetch(fields="reassigned_number")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    client = lookup_client(standin)
    with pytest.raises(TwilioRestException) as undated:
        client.lookups.v2.phone_numbers(LEAD).fetch(fields="reassigned_number")
    assert undated.value.status == 400
    standin.fail_lookups(503, None, times=1)
    with pytest.raises(TwilioRestException) as unavailable:
        client.lookups.v2.phone_numbers(LEAD).fetch(
            fields="reassigned_number", last_verified_date="20250601"
        )
    assert unavailable.value.status == 503
    assert [r.status for r in standin.lookups] == [401, 400, 503]


def test_a_slow_lookup_surfaces_as_a_requests_timeout(standin: TwilioStandIn) -> None:
    standin.delay_lookups(1.0)
    client = lookup_client(standin, timeout=0.2)
    with pytest.raises(requests.Timeout):
        client.lookups.v2.phone_numbers(LEAD).fetch(
            fields="reassigned_number", last_verified_date="20250601"
        )
