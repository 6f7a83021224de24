"""Sign-up sources (issue 15 §2): the form carries an ad link's UTM tags from its address into
hidden fields; the lead keeps the first touch's tags; the API's source.utm_* land too."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.db.models import Lead
from nurture.runtime import Services
from tests.support.factories import sign_up

UTM = {
    "utm_source": "facebook",
    "utm_medium": "paid",
    "utm_campaign": "spring <b>sale</b>",
    "utm_content": "carousel",
    "utm_term": "ketamine",
}


def hidden(text: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(utm_[a-z]+)" value="([^"]*)">', text))


def lead_tags(services: Services) -> list[tuple[str | None, ...]]:
    with services.sessions() as session:
        return [
            (lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_content, lead.utm_term)
            for lead in session.scalars(select(Lead))
        ]


def test_the_form_carries_the_pages_utm_tags_to_the_lead(
    client: TestClient, services: Services
) -> None:
    page = client.get("/consult", params={**UTM, "utm_other": "x", "utm_term": "  "})
    fields = hidden(page.text)
    assert fields == {
        **{k: v for k, v in UTM.items() if k != "utm_term"},
        "utm_campaign": "spring &lt;b&gt;sale&lt;/b&gt;",
    }
    form = {"first_name": "Cy", "email": "cy@example.com", **UTM}
    # Shown again with an error: the tags it was posted with stay in the form.
    again = client.post("/consult", data={**form, "email": "cy@"})
    assert again.status_code == 422
    assert hidden(again.text)["utm_source"] == "facebook"
    done = client.post("/consult", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert lead_tags(services) == [tuple(UTM.values())]


def test_the_first_touch_stays(client: TestClient, services: Services) -> None:
    base = {"first_name": "Cy", "email": "cy@example.com"}
    assert client.post("/consult", data=base, follow_redirects=False).status_code == 303
    assert lead_tags(services) == [(None,) * 5]  # no tags yet: the next sign-up's are the first
    second = {**base, "utm_source": "google", "utm_campaign": "brand"}
    assert client.post("/consult", data=second, follow_redirects=False).status_code == 303
    third = {**base, "utm_source": "facebook", "utm_campaign": "retarget"}
    assert client.post("/consult", data=third, follow_redirects=False).status_code == 303
    assert lead_tags(services) == [("google", None, "brand", None, None)]


def test_api_source_tags_are_kept_and_bounded(services: Services) -> None:
    lead_id = sign_up(
        services, source={"utm_source": "x" * 300, "utm_campaign": 5, "utm_medium": "email"}
    )
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
    assert isinstance(lead_id, uuid.UUID)
    assert (lead.utm_source, lead.utm_campaign, lead.utm_medium) == ("x" * 200, None, "email")
