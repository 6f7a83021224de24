"""POST /webhooks/email/{ses,sendgrid,mailgun,postmark}: bounces and complaints (issue 13 §3).

Each provider's delivery is signed as the provider signs it (SNS through a real HTTPS stand-in
serving its certificate); a forged or missing signature is a 403 that records nothing, a
redelivery counts once, a permanent bounce or a complaint suppresses the address, a transient
bounce only counts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture import clock, consent
from nurture.config.settings import Settings
from nurture.db.models import (
    Channel,
    ConsentEvent,
    EmailFeedback,
    EmailFeedbackKind,
    Purpose,
)
from nurture.outbox.email_feedback import ses
from nurture.runtime import Services, build_services
from nurture.web import create_app, email_webhooks
from tests.conftest import SettingsFactory
from tests.support.email_feedback_signing import (
    MAILGUN_KEY,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    SendGridSigner,
    basic_auth,
    mailgun_body,
    mailgun_complained,
    mailgun_failed,
    postmark_bounce,
    postmark_complaint,
    sendgrid_event,
)
from tests.support.factories import sign_up
from tests.support.sns_standin import (
    TOPIC_ARN,
    SnsStandIn,
    ses_bounce,
    ses_complaint,
    sns_standin,
)

ADDRESS = "ana.rivera@example.com"
SENDGRID = SendGridSigner()


@pytest.fixture
def sns(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SnsStandIn]:
    with sns_standin(tmp_path) as standin:
        # The stand-in's TLS certificate comes from the test CA: trusted through OpenSSL's
        # default verify path, as a system CA bundle would be.
        monkeypatch.setenv("SSL_CERT_FILE", str(standin.ca_file))
        monkeypatch.setattr(email_webhooks, "certificates", ses.Certificates())
        yield standin


@pytest.fixture
def settings(make_settings: SettingsFactory, sns: SnsStandIn) -> Settings:
    return make_settings(
        ses_topic_arns=TOPIC_ARN,
        sns_host_pattern=sns.host_pattern,
        sendgrid_webhook_public_key=SENDGRID.public_key,
        mailgun_signing_key=MAILGUN_KEY,
        postmark_webhook_user=POSTMARK_USER,
        postmark_webhook_password=POSTMARK_PASSWORD,
    )


def _rows(services: Services) -> list[EmailFeedback]:
    with services.sessions() as session:
        return list(session.scalars(select(EmailFeedback).order_by(EmailFeedback.id)))


def _email(services: Services, lead_id: uuid.UUID) -> tuple[bool, bool]:
    with services.sessions() as session:
        state = consent.current(session, lead_id)
        return state.allows(Channel.EMAIL, Purpose.CARE), state.allows(
            Channel.EMAIL, Purpose.MARKETING
        )


def _sources(services: Services, lead_id: uuid.UUID) -> list[str]:
    with services.sessions() as session:
        return sorted(
            e.source.value
            for e in session.scalars(select(ConsentEvent).where(ConsentEvent.lead_id == lead_id))
        )


def _post_sns(client: TestClient, envelope: dict[str, str]) -> Any:
    # SNS posts its JSON as text/plain by default.
    return client.post(
        "/webhooks/email/ses",
        content=json.dumps(envelope),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": envelope.get("Type", ""),
        },
    )


# --- Amazon SES through SNS ---------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce_suppresses_the_address(
    client: TestClient, services: Services, sns: SnsStandIn, version: str
) -> None:
    lead = sign_up(services)
    signed = sns.sign(
        sns.envelope(ses_bounce("Ana.Rivera@example.com"), now=clock.utcnow()), version
    )
    response = _post_sns(client, signed)
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert _email(services, lead) == (False, False)
    assert "bounce" in _sources(services, lead)
    [row] = _rows(services)
    assert (row.provider, row.address, row.kind) == ("ses", ADDRESS, EmailFeedbackKind.BOUNCE)
    assert row.event_id == signed["MessageId"]
    assert "Permanent/General" in row.detail


def test_ses_complaint_suppresses_and_the_certificate_is_fetched_once(
    client: TestClient, services: Services, sns: SnsStandIn
) -> None:
    lead = sign_up(services)
    now = clock.utcnow()
    for message in (ses_complaint(ADDRESS), ses_bounce("someone@example.net")):
        assert _post_sns(client, sns.sign(sns.envelope(message, now=now))).status_code == 200
    assert _email(services, lead) == (False, False)
    assert "complaint" in _sources(services, lead)
    assert [r.kind for r in _rows(services)] == [
        EmailFeedbackKind.COMPLAINT,
        EmailFeedbackKind.BOUNCE,
    ]
    assert sns.certificate_fetches == 1


def test_ses_transient_bounce_only_counts(
    client: TestClient, services: Services, sns: SnsStandIn
) -> None:
    lead = sign_up(services)
    message = ses_bounce(ADDRESS, bounce_type="Transient", sub_type="MailboxFull")
    assert _post_sns(client, sns.sign(sns.envelope(message, now=clock.utcnow()))).status_code == 200
    assert _email(services, lead) == (True, True)
    assert [r.kind for r in _rows(services)] == [EmailFeedbackKind.TRANSIENT_BOUNCE]


def test_ses_redelivery_with_the_same_message_id_counts_once(
    client: TestClient, services: Services, sns: SnsStandIn
) -> None:
    lead = sign_up(services)
    signed = sns.sign(sns.envelope(ses_bounce(ADDRESS), now=clock.utcnow()))
    assert _post_sns(client, signed).json()["recorded"] == 1
    again = _post_sns(client, signed)
    assert again.status_code == 200
    assert again.json() == {"recorded": 0, "duplicates": 1, "paused": False}
    assert len(_rows(services)) == 1
    assert _sources(services, lead).count("bounce") == 2  # care and marketing, once each


def test_ses_bounce_for_an_unknown_address_is_counted_and_changes_no_lead(
    client: TestClient, services: Services, sns: SnsStandIn
) -> None:
    lead = sign_up(services)
    signed = sns.sign(sns.envelope(ses_bounce("nobody@example.net"), now=clock.utcnow()))
    assert _post_sns(client, signed).status_code == 200
    assert [r.address for r in _rows(services)] == ["nobody@example.net"]
    assert _email(services, lead) == (True, True)


def _forgeries(sns: SnsStandIn) -> dict[str, dict[str, str]]:
    now = clock.utcnow()
    good = sns.sign(sns.envelope(ses_bounce(ADDRESS), now=now))
    unsigned = sns.envelope(ses_bounce(ADDRESS), now=now)
    return {
        "altered message": {**good, "Message": json.dumps(ses_bounce("ben@example.com"))},
        "another key": sns.sign(sns.envelope(ses_bounce(ADDRESS), now=now), forged=True),
        "missing signature": {**unsigned, "SignatureVersion": "2"},
        "empty signature": {**good, "Signature": ""},
        "unknown version": {**good, "SignatureVersion": "3"},
        "certificate off the SNS host": sns.sign(
            {**unsigned, "SigningCertURL": "https://evil.example/SimpleNotificationService.pem"}
        ),
        "certificate over http": sns.sign(
            {**unsigned, "SigningCertURL": sns.base_url.replace("https", "http") + "/x.pem"}
        ),
        "another topic": sns.sign(
            {**unsigned, "TopicArn": "arn:aws:sns:us-east-1:999999999999:other"}
        ),
        "an hour old": sns.sign(
            {
                **unsigned,
                "Timestamp": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
        ),
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "altered message",
        "another key",
        "missing signature",
        "empty signature",
        "unknown version",
        "certificate off the SNS host",
        "certificate over http",
        "another topic",
        "an hour old",
    ],
)
def test_ses_forged_or_unsigned_messages_are_refused_and_record_nothing(
    client: TestClient, services: Services, sns: SnsStandIn, forgery: str
) -> None:
    lead = sign_up(services)
    response = _post_sns(client, _forgeries(sns)[forgery])
    assert response.status_code == 403, response.text
    assert "ses:" in response.json()["detail"]
    assert _rows(services) == []
    assert _email(services, lead) == (True, True)


def test_ses_subscription_is_confirmed_at_the_sns_host(
    client: TestClient, services: Services, sns: SnsStandIn
) -> None:
    response = _post_sns(client, sns.sign(sns.confirmation(now=clock.utcnow(), token="tok-42")))
    assert response.status_code == 200, response.text
    assert sns.subscribed == ["/subscribe?Action=ConfirmSubscription&Token=tok-42"]
    # A SubscribeURL off the SNS host is never visited, even in a signed message.
    elsewhere = sns.confirmation(now=clock.utcnow())
    elsewhere["SubscribeURL"] = "https://evil.example/subscribe?Token=x"
    assert _post_sns(client, sns.sign(elsewhere)).status_code == 403
    forged = {**sns.sign(sns.confirmation(now=clock.utcnow(), token="tok-1")), "Token": "tok-2"}
    assert _post_sns(client, forged).status_code == 403
    assert len(sns.subscribed) == 1
    assert _rows(services) == []


def test_ses_body_that_is_not_an_sns_message_is_a_422(client: TestClient) -> None:
    for body in ("not json", "[1, 2]", '{"Type": {"nested": 1}}'):
        response = client.post("/webhooks/email/ses", content=body)
        assert response.status_code == 422, body
        assert "ses" in response.json()["detail"]


# --- SendGrid -----------------------------------------------------------------------------


def _post_sendgrid(
    client: TestClient, events: list[dict[str, Any]], signer: SendGridSigner = SENDGRID
) -> Any:
    body = json.dumps(events).encode()
    timestamp = str(int(clock.utcnow().timestamp()))
    return client.post(
        "/webhooks/email/sendgrid", content=body, headers=signer.headers(body, timestamp)
    )


def test_sendgrid_batch_suppresses_bounces_and_spam_reports_and_counts_blocks(
    client: TestClient, services: Services
) -> None:
    ana = sign_up(services)
    ben = sign_up(services, email="ben@example.com", phone="+12085550125")
    cai = sign_up(services, email="cai@example.com", phone="+12085550126")
    now = clock.utcnow()
    response = _post_sendgrid(
        client,
        [
            sendgrid_event(ADDRESS, "delivered", event_id="sg-0", now=now),
            sendgrid_event(
                ADDRESS, "bounce", event_id="sg-1", now=now, type="bounce", status="5.1.1"
            ),
            sendgrid_event("ben@example.com", "spamreport", event_id="sg-2", now=now),
            sendgrid_event("cai@example.com", "bounce", event_id="sg-3", now=now, type="blocked"),
            sendgrid_event("nobody@example.net", "bounce", event_id="sg-4", now=now),
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 4
    assert _email(services, ana) == (False, False)
    assert _email(services, ben) == (False, False)
    assert "complaint" in _sources(services, ben)
    assert _email(services, cai) == (True, True)
    assert {(r.event_id, r.kind) for r in _rows(services)} == {
        ("sg-1", EmailFeedbackKind.BOUNCE),
        ("sg-2", EmailFeedbackKind.COMPLAINT),
        ("sg-3", EmailFeedbackKind.TRANSIENT_BOUNCE),
        ("sg-4", EmailFeedbackKind.BOUNCE),
    }


def test_sendgrid_redelivered_event_counts_once(client: TestClient, services: Services) -> None:
    sign_up(services)
    event = sendgrid_event(ADDRESS, "bounce", event_id="sg-1", now=clock.utcnow())
    assert _post_sendgrid(client, [event]).json()["recorded"] == 1
    assert _post_sendgrid(client, [event]).json() == {
        "recorded": 0,
        "duplicates": 1,
        "paused": False,
    }
    assert len(_rows(services)) == 1


def test_sendgrid_forged_or_unsigned_batches_are_refused(
    client: TestClient, services: Services
) -> None:
    lead = sign_up(services)
    event = sendgrid_event(ADDRESS, "spamreport", event_id="sg-1", now=clock.utcnow())
    body = json.dumps([event]).encode()
    timestamp = str(int(clock.utcnow().timestamp()))
    good = SENDGRID.headers(body, timestamp)
    attempts = {
        "another key": SendGridSigner().headers(body, timestamp),
        "no signature": {k: v for k, v in good.items() if "Signature" not in k},
        "no timestamp": {k: v for k, v in good.items() if "Timestamp" not in k},
        "other timestamp": {**good, "X-Twilio-Email-Event-Webhook-Timestamp": "1"},
        "garbage": {**good, "X-Twilio-Email-Event-Webhook-Signature": "!!!"},
    }
    for name, headers in attempts.items():
        response = client.post("/webhooks/email/sendgrid", content=body, headers=headers)
        assert response.status_code == 403, name
    tampered = json.dumps([{**event, "email": "ben@example.com"}]).encode()
    response = client.post("/webhooks/email/sendgrid", content=tampered, headers=good)
    assert response.status_code == 403
    assert _rows(services) == []
    assert _email(services, lead) == (True, True)


def test_sendgrid_signed_body_that_is_not_events_is_a_422(
    client: TestClient, services: Services
) -> None:
    for body in (b'{"event": "bounce"}', b"[1, 2]", b"not json", b'[{"event": "bounce"}]'):
        timestamp = str(int(clock.utcnow().timestamp()))
        response = client.post(
            "/webhooks/email/sendgrid", content=body, headers=SENDGRID.headers(body, timestamp)
        )
        assert response.status_code == 422, body
        assert response.json()["detail"].startswith("sendgrid:")
    assert _rows(services) == []


# --- Mailgun ------------------------------------------------------------------------------


def _post_mailgun(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/webhooks/email/mailgun", content=body, headers={"Content-Type": "application/json"}
    )


def test_mailgun_permanent_failure_and_complaint_suppress_temporary_counts(
    client: TestClient, services: Services
) -> None:
    ana = sign_up(services)
    ben = sign_up(services, email="ben@example.com", phone="+12085550125")
    cai = sign_up(services, email="cai@example.com", phone="+12085550126")
    now = clock.utcnow()
    for event in (
        mailgun_failed(ADDRESS, event_id="mg-1", severity="permanent", now=now),
        mailgun_complained("ben@example.com", event_id="mg-2", now=now),
        mailgun_failed("cai@example.com", event_id="mg-3", severity="temporary", now=now),
        mailgun_failed("nobody@example.net", event_id="mg-4", severity="permanent", now=now),
    ):
        response = _post_mailgun(client, mailgun_body(event, now=now))
        assert response.status_code == 200, response.text
    assert _email(services, ana) == (False, False)
    assert _email(services, ben) == (False, False)
    assert _email(services, cai) == (True, True)
    assert [r.kind for r in _rows(services)] == [
        EmailFeedbackKind.BOUNCE,
        EmailFeedbackKind.COMPLAINT,
        EmailFeedbackKind.TRANSIENT_BOUNCE,
        EmailFeedbackKind.BOUNCE,
    ]
    assert "failed permanent 550" in _rows(services)[0].detail


def test_mailgun_replayed_token_is_refused_and_a_redelivered_event_counts_once(
    client: TestClient, services: Services
) -> None:
    lead = sign_up(services)
    now = clock.utcnow()
    event = mailgun_failed(ADDRESS, event_id="mg-1", severity="permanent", now=now)
    body = mailgun_body(event, now=now, token="t" * 50)
    assert _post_mailgun(client, body).json()["recorded"] == 1
    replay = _post_mailgun(client, body)
    assert replay.status_code == 403
    assert "already used" in replay.json()["detail"]
    # The signature covers only timestamp + token: the same token with another event is refused.
    other = mailgun_complained("ben@example.com", event_id="mg-9", now=now)
    swapped = json.loads(body) | {"event-data": other}
    assert _post_mailgun(client, json.dumps(swapped).encode()).status_code == 403
    # Mailgun redelivering the event (a fresh signature) counts once.
    again = _post_mailgun(client, mailgun_body(event, now=now))
    assert again.json() == {"recorded": 0, "duplicates": 1, "paused": False}
    assert len(_rows(services)) == 1
    assert _sources(services, lead).count("bounce") == 2


def test_mailgun_forged_unsigned_or_stale_deliveries_are_refused(
    client: TestClient, services: Services
) -> None:
    lead = sign_up(services)
    now = clock.utcnow()
    event = mailgun_failed(ADDRESS, event_id="mg-1", severity="permanent", now=now)
    unsigned = json.dumps({"event-data": event}).encode()
    bodies = {
        "wrong key": mailgun_body(event, now=now, key="key-somebody-else"),
        "no signature": unsigned,
        "stale": mailgun_body(event, now=now - timedelta(days=2)),
        "future": mailgun_body(event, now=now + timedelta(hours=1)),
    }
    huge = "9" * 40
    bodies["huge timestamp"] = json.dumps(
        {
            "signature": {
                "token": "t" * 50,
                "timestamp": huge,
                "signature": hmac.new(
                    MAILGUN_KEY.encode(), (huge + "t" * 50).encode(), hashlib.sha256
                ).hexdigest(),
            },
            "event-data": event,
        }
    ).encode()
    for name, body in bodies.items():
        assert _post_mailgun(client, body).status_code == 403, name
    assert _rows(services) == []
    assert _email(services, lead) == (True, True)


# --- Postmark -----------------------------------------------------------------------------


def _post_postmark(client: TestClient, record: dict[str, Any], auth: dict[str, str]) -> Any:
    return client.post("/webhooks/email/postmark", json=record, headers=auth)


def test_postmark_hard_bounce_and_complaint_suppress_soft_bounce_counts(
    client: TestClient, services: Services
) -> None:
    ana = sign_up(services)
    ben = sign_up(services, email="ben@example.com", phone="+12085550125")
    cai = sign_up(services, email="cai@example.com", phone="+12085550126")
    for record in (
        postmark_bounce(ADDRESS, record_id=1, bounce_type="HardBounce", type_code=1),
        postmark_complaint("ben@example.com", record_id=2),
        postmark_bounce("cai@example.com", record_id=3, bounce_type="SoftBounce", type_code=4096),
        postmark_bounce("nobody@example.net", record_id=4, bounce_type="HardBounce", type_code=1),
    ):
        response = _post_postmark(client, record, basic_auth())
        assert response.status_code == 200, response.text
    assert _email(services, ana) == (False, False)
    assert _email(services, ben) == (False, False)
    assert "complaint" in _sources(services, ben)
    assert _email(services, cai) == (True, True)
    assert [(r.event_id, r.kind) for r in _rows(services)] == [
        ("Bounce:1", EmailFeedbackKind.BOUNCE),
        ("SpamComplaint:2", EmailFeedbackKind.COMPLAINT),
        ("Bounce:3", EmailFeedbackKind.TRANSIENT_BOUNCE),
        ("Bounce:4", EmailFeedbackKind.BOUNCE),
    ]


def test_postmark_redelivery_counts_once(client: TestClient, services: Services) -> None:
    sign_up(services)
    record = postmark_bounce(ADDRESS, record_id=7, bounce_type="HardBounce", type_code=1)
    assert _post_postmark(client, record, basic_auth()).json()["recorded"] == 1
    assert _post_postmark(client, record, basic_auth()).json()["duplicates"] == 1
    assert len(_rows(services)) == 1


def test_postmark_wrong_or_missing_credentials_are_refused(
    client: TestClient, services: Services
) -> None:
    lead = sign_up(services)
    record = postmark_bounce(ADDRESS, record_id=1, bounce_type="HardBounce", type_code=1)
    for auth in (
        {},
        basic_auth(password="guess"),
        basic_auth(user="someone"),
        {"Authorization": "Bearer " + POSTMARK_PASSWORD},
        {"Authorization": "Basic !!!"},
    ):
        assert _post_postmark(client, record, auth).status_code == 403, auth
    assert _rows(services) == []
    assert _email(services, lead) == (True, True)


# --- not configured -----------------------------------------------------------------------


def test_providers_not_configured_answer_404(make_settings: SettingsFactory) -> None:
    services = build_services(make_settings())
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            for provider in ("ses", "sendgrid", "mailgun", "postmark"):
                response = client.post(f"/webhooks/email/{provider}", content=b"{}")
                assert response.status_code == 404, provider
                assert "not configured" in response.json()["detail"]
            assert _rows(services) == []
    finally:
        services.close()
