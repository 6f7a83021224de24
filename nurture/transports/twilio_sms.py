"""Texts through the official Twilio SDK, and the Reassigned Numbers check (Lookup v2).

``NURTURE_TWILIO_API_URL`` moves the API host (tests use a local stand-in, which also serves
Lookup; left at its default, Lookup keeps its own host); every message asks for status
callbacks (at a URL naming its message and attempt) and carries a ValidityPeriod so that one
stuck in Twilio's queue expires instead of arriving hours late.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from nurture.transports import (
    DeliveryOutcomeUnknownError,
    OutgoingSms,
    PermanentDeliveryError,
    Reassigned,
    TransientDeliveryError,
)
from nurture.transports.twilio_errors import ErrorClass, classify

log = logging.getLogger(__name__)

POOL_SIZE = 16  # connections kept open to the API; at least a batch's parallel sends
DEFAULT_API_URL = "https://api.twilio.com"
# Lookup v2's `reassigned_number.is_number_reassigned` (twilio.com/docs/lookup/v2-api/
# reassigned-number); anything else means the database could not be asked.
REASSIGNED_ANSWERS: dict[str, Reassigned] = {
    "yes": "yes",
    "no": "no",
    "no_data_available": "no_data",
}


class TwilioSmsTransport:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        api_url: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str,
        validity_period: int,
        timeout: float,
    ) -> None:
        http_client = TwilioHttpClient(timeout=timeout)
        if http_client.session is not None:
            # One kept-alive connection per thread of a batch (the SDK keeps cpu_count + 4).
            for prefix in ("https://", "http://"):
                http_client.session.mount(prefix, HTTPAdapter(pool_maxsize=POOL_SIZE))
        self.client = Client(account_sid, auth_token, http_client=http_client)
        # The SDK has no host setting; each domain's base URL is the one place to move it. A
        # moved API host (a stand-in, a proxy) answers Lookup too; Twilio's own keeps its own.
        self.client.api.base_url = api_url
        if api_url.rstrip("/") != DEFAULT_API_URL:
            self.client.lookups.base_url = api_url
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.validity_period = validity_period

    def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()  # requests reopens connections on the next call

    def send(self, sms: OutgoingSms) -> str:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number or ""}
        )
        try:
            message = self.client.messages.create(
                to=sms.to,
                body=sms.body,
                status_callback=self._callback_for(sms),
                validity_period=self.validity_period,
                **sender,
            )
        except TwilioRestException as error:
            raise _twilio_error(error) from None
        except requests.RequestException as error:
            if _never_connected(error):
                # No connection was made, so Twilio cannot have the message.
                raise TransientDeliveryError(f"Twilio unreachable: {error}", code="io") from None
            # The request went out and no answer came back: it may have been accepted.
            raise DeliveryOutcomeUnknownError(
                f"no answer from Twilio ({type(error).__name__}); check before resending",
                code="timeout",
            ) from None
        return str(message.sid)

    def _callback_for(self, sms: OutgoingSms) -> str:
        # Twilio signs the whole URL, query included, so the webhook can trust what it names.
        if not sms.status_query:
            return self.status_callback
        separator = "&" if "?" in self.status_callback else "?"
        return f"{self.status_callback}{separator}{sms.status_query}"

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        """The id of a text Twilio accepted to ``to`` with ``body`` since ``since`` (for settling
        `unknown` rows); None when Twilio says it has none; LookupError when it cannot be asked."""
        try:
            return _find_sent_impl(self.client, to=to, body=body, since=since)
        except (TwilioRestException, requests.RequestException) as error:
            raise LookupError(f"Twilio could not be asked: {error}") from None

    def reassigned_since(self, number: str, since: date) -> Reassigned:
        """Lookup v2 ``Fields=reassigned_number`` with ``LastVerifiedDate`` = ``since``
        (YYYYMMDD): whether the number was permanently disconnected since then. LookupError
        when Twilio could not be asked or did not say (the caller waits and asks again)."""
        try:
            found = self.client.lookups.v2.phone_numbers(number).fetch(
                fields="reassigned_number", last_verified_date=since.strftime("%Y%m%d")
            )
        except (TwilioRestException, requests.RequestException) as error:
            raise LookupError(f"Twilio Lookup could not be asked: {error}") from None
        package = found.reassigned_number
        said = package.get("is_number_reassigned") if isinstance(package, dict) else None
        answer = REASSIGNED_ANSWERS.get(said) if isinstance(said, str) else None
        if answer is None:
            code = package.get("error_code") if isinstance(package, dict) else None
            log.warning("Twilio Lookup gave no reassigned-number answer (error %s)", code)
            raise LookupError(f"Twilio Lookup gave no reassigned-number answer (error {code})")
        return answer


def _find_sent_impl(client: Client, *, to: str, body: str, since: datetime) -> str | None:
    for message in client.messages.list(to=to, date_sent_after=since, limit=50):
        if message.body == body and message.status not in {"failed", "undelivered", "canceled"}:
            return str(message.sid)
    return None


def _never_connected(error: requests.RequestException) -> bool:
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)  # requests wraps urllib3's MaxRetryError
    return isinstance(reason, NewConnectionError)


def _twilio_error(error: TwilioRestException) -> Exception:
    code = error.code if isinstance(error.code, int) else None
    reason = f"Twilio {error.status} {code or ''}: {error.msg}".replace("  ", " ")
    label = str(code) if code is not None else f"http-{error.status}"
    # A 30003 is reported in status callbacks (the carrier's word on delivery); should the API
    # answer one, the handset may be back later: tried again with backoff, like a 30008.
    if classify(code, error.status) in {ErrorClass.RETRY, ErrorClass.HANDSET_OFF}:
        return TransientDeliveryError(reason, code=label)
    return PermanentDeliveryError(reason, code=label)
