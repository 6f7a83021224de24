"""E-mail unsubscribe: RFC 8058 one-click and the preferences page (compliance rules 17–19)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select

from nurture import consent
from nurture.consent import tokens
from nurture.db.models import Channel, ConsentEvent, MessageStatus, Purpose
from nurture.runtime import Services
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up


def token_for(services: Services, lead_id: object) -> str:
    return tokens.sign(services.secret, lead_id, Purpose.MARKETING)  # type: ignore[arg-type]


def marketing_email(services: Services, lead_id: object) -> bool:
    with services.sessions() as session:
        return consent.current(session, lead_id).allows(Channel.EMAIL, Purpose.MARKETING)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rule_19_one_click_post_unsubscribes_with_200_no_redirect_no_cookie(
    client: TestClient, services: Services, encoding: str
) -> None:
    lead_id = sign_up(services)
    token = token_for(services, lead_id)
    if encoding == "urlencoded":
        response = client.post(
            f"/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        response = client.post(
            f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
        )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "location" not in response.headers
    assert not marketing_email(services, lead_id)
    with services.sessions() as session:
        event = session.scalars(select(ConsentEvent).where(ConsentEvent.action == "revoked")).one()
        assert event.source.value == "email_one_click"
        statuses = {m.step_key: m.status for m in messages_of(session, lead_id)}
    assert statuses["follow-up"] is MessageStatus.CANCELLED
    assert statuses["welcome"] is MessageStatus.SCHEDULED  # care mail is not stopped by it


def test_a_get_never_unsubscribes(client: TestClient, services: Services) -> None:
    lead_id = sign_up(services)
    page = client.get(f"/u/{token_for(services, lead_id)}")
    assert page.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "a***@example.com" in page.text
    assert marketing_email(services, lead_id)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_altered_token_is_404_and_changes_nothing(
    client: TestClient, services: Services, method: str
) -> None:
    lead_id = sign_up(services)
    token = token_for(services, lead_id)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = getattr(client, method)(
        f"/u/{forged}", **({"data": {"List-Unsubscribe": "One-Click"}} if method == "post" else {})
    )
    assert response.status_code == 404
    assert "This link does not work" in response.text
    assert marketing_email(services, lead_id)


def test_a_post_without_the_one_click_field_is_refused(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    response = client.post(f"/u/{token_for(services, lead_id)}", data={"something": "else"})
    assert response.status_code == 400
    assert marketing_email(services, lead_id)


def test_links_keep_working_for_years(client: TestClient, services: Services) -> None:
    lead_id = sign_up(services)
    token = token_for(services, lead_id)
    with freeze_time("2031-03-03 18:00:00"):
        assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert not marketing_email(services, lead_id)


def test_the_preferences_form_sets_each_channel_and_purpose(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    token = token_for(services, lead_id)
    page = client.get(f"/u/{token}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf
    response = client.post(
        f"/u/{token}/preferences",
        data={"csrf": csrf.group(1), "email_marketing": "on", "email_care": "on"},
    )
    assert response.status_code == 200
    assert "Your choices are saved" in response.text
    with services.sessions() as session:
        state = consent.current(session, lead_id).as_dict()
    assert state == {
        "email": {"care": True, "marketing": True},
        "sms": {"care": False, "marketing": False},
    }
    with services.sessions() as session:
        sms = [m for m in messages_of(session, lead_id) if m.channel is Channel.SMS]
    assert [m.status for m in sms] == [MessageStatus.CANCELLED]


def test_the_preferences_form_needs_its_csrf_token(client: TestClient, services: Services) -> None:
    lead_id = sign_up(services)
    token = token_for(services, lead_id)
    response = client.post(f"/u/{token}/preferences", data={"csrf": "0" * 32})
    assert response.status_code == 403
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)


def test_marketing_email_carries_the_headers_and_footer_care_email_does_not(
    services: Services,
) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        claim_and_send_all(services)
        frozen.tick(timedelta(days=2))
        claim_and_send_all(services)
    welcome, follow_up = outbox_files.emails(services.settings.resolved_outbox_dir)
    token = token_for(services, lead_id)
    assert welcome["List-Unsubscribe"] is None
    assert follow_up["List-Unsubscribe"] == f"<https://nurture.test/u/{token}>"
    assert follow_up["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = follow_up.get_body(preferencelist=("plain",))
    assert text is not None
    assert f"https://nurture.test/u/{token}" in text.get_content()
    assert services.clinic.address in text.get_content()
