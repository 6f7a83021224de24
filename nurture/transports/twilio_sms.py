"""Texts through the official Twilio SDK.

``NURTURE_TWILIO_API_URL`` moves the API host (tests use a local stand-in); every message asks
for status callbacks (at a URL naming its message and attempt) and carries a ValidityPeriod so
that one stuck in Twilio's queue expires instead of arriving hours late.
"""

from __future__ import annotations

from datetime import datetime

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
    TransientDeliveryError,
)
from nurture.transports.twilio_errors import ErrorClass, classify

POOL_SIZE = 16  # connections kept open to the API; at least a batch's parallel sends


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
        # The SDK has no host setting; the api domain's base URL is the one place to move it.
        self.client.api.base_url = api_url
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
    if classify(code, error.status) is ErrorClass.RETRY:
        return TransientDeliveryError(reason, code=label)
    return PermanentDeliveryError(reason, code=label)
