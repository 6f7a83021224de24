"""The sign-up form embedded in another site (GET /embed/consult; compliance rule 1).

The embed is the hosted form, framed only by the configured origins, posting to the same
handler: a sign-up through it records the same consent evidence as /consult, plus the page
that embedded it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.db.models import ConsentEvent, Lead
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory

ORIGINS = "https://clinic.example, https://www.clinic.example"
EMBEDDING_PAGE = "https://www.clinic.example/contact?utm_source=news"


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    built = build_services(make_settings(embed_origins=ORIGINS))
    yield built
    built.close()


def form_of(html: str) -> tuple[str, dict[str, str]]:
    """The form's action and its hidden fields, as a browser would post them."""
    action = re.search(r'<form method="post" action="([^"]*)"', html)
    assert action
    hidden = dict(re.findall(r'<input type="hidden"[^>]*name="([^"]+)" value="([^"]*)"', html))
    return action.group(1).replace("&amp;", "&"), hidden


def sign_up_through(client: TestClient, path: str, person: dict[str, str], **headers: str) -> str:
    page = client.get(path, headers=headers)
    assert page.status_code == 200
    action, hidden = form_of(page.text)
    response = client.post(
        action,
        data={**hidden, **person, "email_marketing": "on", "sms_care": "on", "sms_marketing": "on"},
        headers={"User-Agent": "Browser/1.0"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def evidence_of(services: Services, email: str) -> dict[str, dict[str, object]]:
    with services.sessions() as session:
        lead = session.scalars(select(Lead).where(Lead.email == email)).one()
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.lead_id == lead.id))
        return {f"{e.channel.value}_{e.purpose.value}": dict(e.evidence) for e in events}


def test_rule_1_the_embed_may_be_framed_by_the_configured_origins_only(
    client: TestClient,
) -> None:
    embed = client.get("/embed/consult", headers={"Referer": EMBEDDING_PAGE})
    assert embed.status_code == 200
    assert embed.headers["content-security-policy"] == (
        "frame-ancestors https://clinic.example https://www.clinic.example"
    )
    assert "x-frame-options" not in embed.headers
    hosted = client.get("/consult")
    assert hosted.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert hosted.headers["x-frame-options"] == "DENY"
    # The same form: only where it posts differs.
    without_action = [
        re.sub(r'<form method="post" action="[^"]*"', "<form>", page.text)
        for page in (embed, hosted)
    ]
    assert without_action[0] == without_action[1]
    action, _ = form_of(embed.text)
    assert parse_qs(urlsplit(action).query) == {"embedded_in": [EMBEDDING_PAGE]}
    # The other pages refuse to be framed as well.
    for path in ("/consult/thanks", "/healthz"):
        assert client.get(path).headers["content-security-policy"] == "frame-ancestors 'none'"


def test_rule_1_without_configured_origins_the_embed_is_404(
    make_settings: SettingsFactory,
) -> None:
    services = build_services(make_settings())
    try:
        with TestClient(create_app(services)) as client:
            for method, path in (
                ("GET", "/embed/consult"),
                ("POST", "/embed/consult"),
                ("GET", "/embed/consult/thanks"),
            ):
                response = client.request(method, path, data={"first_name": "Cy"})
                assert response.status_code == 404, (method, path)
                assert response.headers["content-type"].startswith("text/plain")
                assert "NURTURE_EMBED_ORIGINS" in response.text
                assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
            with services.sessions() as session:
                assert session.scalars(select(Lead)).first() is None
    finally:
        services.close()


def test_rule_1_a_signup_through_the_embed_stores_the_consult_form_s_evidence(
    client: TestClient, services: Services
) -> None:
    hosted = {"first_name": "Ana", "email": "ana@example.com", "phone": "(208) 555-0171"}
    embedded = {"first_name": "Bo", "email": "bo@example.com", "phone": "(208) 555-0172"}
    assert sign_up_through(client, "/consult", hosted) == "/consult/thanks"
    thanks = sign_up_through(client, "/embed/consult", embedded, Referer=EMBEDDING_PAGE)
    assert thanks == "/embed/consult/thanks"
    landing = client.get(thanks)
    assert landing.status_code == 200 and "we have your request" in landing.text
    assert landing.headers["content-security-policy"].startswith("frame-ancestors https://")

    by_form = evidence_of(services, "ana@example.com")
    by_embed = evidence_of(services, "bo@example.com")
    assert set(by_embed) == set(by_form) >= {"email_marketing", "sms_care", "sms_marketing"}
    for grant, evidence in by_embed.items():
        assert set(evidence) == set(by_form[grant]), grant
        for field in ("disclosure_text", "disclosure_version", "checkbox", "user_agent", "ip"):
            assert evidence[field] == by_form[grant][field], (grant, field)
        for optional in ("seller", "box_started_unticked"):
            assert evidence.get(optional) == by_form[grant].get(optional), (grant, optional)
        # The embedding page, as the browser gave it, in the address the form posted to.
        page_url = urlsplit(str(evidence["page_url"]))
        assert page_url.path == "/embed/consult"
        assert parse_qs(page_url.query) == {"embedded_in": [EMBEDDING_PAGE]}
        assert str(by_form[grant]["page_url"]).endswith("/consult")


def test_rule_1_an_embedded_form_with_errors_stays_framed_and_keeps_its_page(
    client: TestClient, services: Services
) -> None:
    page = client.get("/embed/consult", headers={"Referer": EMBEDDING_PAGE})
    action, hidden = form_of(page.text)
    response = client.post(action, data={**hidden, "first_name": "Cy", "sms_care": "on"})
    assert response.status_code == 422
    assert "phone number is needed to receive texts" in response.text
    assert response.headers["content-security-policy"].startswith("frame-ancestors https://")
    assert form_of(response.text)[0] == action  # the embedding page is still carried along
    with services.sessions() as session:
        assert session.scalars(select(Lead)).first() is None


@pytest.mark.parametrize(
    "origins",
    ["http://clinic.example", "https://clinic.example/contact", "https://clinic.example 'self'"],
)
def test_embed_origins_must_be_https_origins(make_settings: SettingsFactory, origins: str) -> None:
    with pytest.raises(ValueError, match="is not an https origin"):
        make_settings(embed_origins=origins)
