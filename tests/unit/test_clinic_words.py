"""The clinic's words (issue 12): what the shipped templates tell a lead is true and plain.

Every test renders the real template files with the real renderer, the clinic's own
configuration and a sample lead (nurture.content.samples), as the worker does when it sends.
Rule numbers are those of ../shared/research/compliance.md: 17 (a subject line that is not
deceptive), 27 (the 988 Messaging Framework, and the off-label efficacy claims it leaves open).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from nurture import content
from nurture.config.clinic import load_clinic
from nurture.config.policy import load_policy
from nurture.content.lint import LintTarget, lint_template
from nurture.content.rendering import EmailLayouts, RenderedEmail, Renderer
from nurture.content.samples import SAMPLE_ALERT, sample_leads
from nurture.db.models import Channel, Lead, Purpose
from nurture.program.sequences import load_catalog
from tests.conftest import REPO

CLINIC = load_clinic(REPO / "config")
POLICY = load_policy(REPO / "config")
CATALOG = load_catalog(REPO / "config/sequences")
LAYOUTS = EmailLayouts(
    html=(REPO / "templates/layouts/email.html.j2").read_text(),
    text=(REPO / "templates/layouts/email.txt.j2").read_text(),
)
PUBLIC_URL = "https://nurture.example.org"
EDUCATION = [
    "understanding-depression",
    "how-the-therapy-works",
    "rapid-relief",
    "side-effects-and-risks",
    "what-to-expect",
]
EMAILS = sorted(path.name.removesuffix(".md.j2") for path in (REPO / "templates/email").iterdir())
LEAD_EMAILS = [key for key in EMAILS if not key.startswith("staff-")]


def new_lead(**fields: object) -> Lead:
    lead = sample_leads()["New lead, no consult yet"]
    for name, value in fields.items():
        setattr(lead, name, value)
    return lead


def missed_consult_lead() -> Lead:
    """A lead marked no-show: back to signed_up, the missed time kept for the follow-up."""
    return new_lead(consult_at=datetime(2026, 3, 3, 16, 30, tzinfo=UTC), consult_version=1)


def purpose_of(key: str) -> Purpose:
    if key.startswith("staff-"):
        return Purpose.ALERT
    steps = [step for s in CATALOG.by_key.values() for step in s.steps if step.template == key]
    return steps[0].purpose if steps else Purpose.CARE


def email(key: str, lead: Lead | None = None) -> RenderedEmail:
    purpose = purpose_of(key)
    context = content.context_for(
        lead or new_lead(),
        clinic=CLINIC,
        public_url=PUBLIC_URL,
        secret=b"test",
        purpose=purpose,
        alert=SAMPLE_ALERT if purpose is Purpose.ALERT else None,
    )
    source = (REPO / f"templates/email/{key}.md.j2").read_text()
    return Renderer().render_email(source, LAYOUTS, context, name=f"email/{key}")


def body_of(rendered: RenderedEmail) -> str:
    """The text part without the layout's footer (which carries 988 on every lead e-mail)."""
    return rendered.text.split("\n--\n")[0]


def sms(key: str, lead: Lead | None = None, purpose: Purpose = Purpose.CARE) -> str:
    context = content.context_for(
        lead or new_lead(), clinic=CLINIC, public_url=PUBLIC_URL, secret=b"test", purpose=purpose
    )
    source = (REPO / f"templates/sms/{key}.txt.j2").read_text()
    return Renderer().render_sms(source, context, name=f"sms/{key}")


def sentence_naming(word: str, text: str) -> str:
    [sentence] = [s for s in re.split(r"(?<=[.;])\s+", text) if word in s]
    return sentence


# Rule 27 (and honesty): the regulatory status, said plainly ----------------------------------


@pytest.mark.parametrize("key", EDUCATION)
def test_rule_17_education_emails_say_off_label_and_name_spravato(key: str) -> None:
    body = " ".join(body_of(email(key)).split())
    assert "Ketamine is FDA-approved as an anesthetic" in body
    assert "off-label" in body
    spravato = sentence_naming("Spravato", body).lower()
    for words in ("esketamine", "nasal spray", "fda", "treatment-resistant depression"):
        assert words in spravato, (key, words, spravato)


OVERCLAIMS = [
    r"\bcur(e|es|ed|ing)\b",
    r"\bguarantee",
    r"\bmiracle",
    r"\bbreakthrough",
    r"\bproven\b",
    r"\bpermanent",
    r"\b100 ?%",
    r"\b(instant|immediate|rapid|fast|quick) relief\b",
    r"(?<!not )\b(works|helps) (for )?everyone\b",
    r"\brelief for everyone\b",
    r"\bwill (feel better|get better|work)\b",
]


@pytest.mark.parametrize("key", LEAD_EMAILS)
def test_rule_27_no_email_overclaims(key: str) -> None:
    rendered = email(key)
    words = f"{rendered.subject}\n{rendered.preheader}\n{rendered.text}"
    for pattern in OVERCLAIMS:
        assert not re.search(pattern, words, re.IGNORECASE), (key, pattern)


def test_rule_27_side_effects_cover_bladder_dissociation_sedation_bp_misuse_and_dip() -> None:
    body = body_of(email("side-effects-and-risks"))
    lowered = body.lower()
    for words in (
        "bladder",
        "urin",
        "dissociation",
        "hallucinations",
        "sedated",
        "blood pressure",
        "misused",
        "dependence",
    ):
        assert words in lowered, words
    # The dip after the effect fades names its next step in the same paragraph: the care team,
    # and 988 (in the body, not only in the footer every e-mail carries).
    [dip] = [paragraph for paragraph in body.split("\n\n") if "wears off" in paragraph]
    assert "mood dips" in dip
    assert "care team" in dip and CLINIC.phone in dip
    assert "988" in dip and "911" in dip


# Wording bugs -----------------------------------------------------------------------------------


def test_stop_confirmation_says_no_further_texts_because_care_email_continues() -> None:
    body = sms("stop-confirmation")
    assert "no further texts" in body
    assert "messages" not in body
    assert POLICY.content.required["sms/stop-confirmation"] == ["no further texts"]
    source = (REPO / "templates/sms/stop-confirmation.txt.j2").read_text()
    report = lint_template(
        LintTarget(Channel.SMS, "stop-confirmation", source, {Purpose.CARE}),
        renderer=Renderer(),
        layouts=LAYOUTS,
        policy=POLICY,
        clinic=CLINIC,
        public_url=PUBLIC_URL,
    )
    assert report.ok, [str(f) for f in report.findings]


def test_no_show_text_does_not_say_today_when_it_goes_out_the_next_morning() -> None:
    # The text goes 30 minutes after the no-show is marked, inside care hours: a no-show marked
    # in the evening (or by staff the next day) is texted on a later day than the consult.
    [step] = CATALOG.by_key["no-show-followup"].steps[:1]
    assert step.template == "no-show-text" and step.offset == timedelta(minutes=30)
    assert POLICY.windows.sms.care.start > 0  # quiet hours can hold it past midnight
    lead = missed_consult_lead()
    when = content.context_for(
        lead, clinic=CLINIC, public_url=PUBLIC_URL, secret=b"t", purpose=Purpose.CARE
    ).consult.when
    for rendered in (sms("no-show-text", lead), sms("no-show-text")):
        assert not re.search(r"\b(today|tonight|this morning)\b", rendered, re.IGNORECASE)
    assert f"consultation on {when}." in sms("no-show-text", lead)
    follow_up = email("no-show-email", lead)
    assert "today" not in f"{follow_up.subject}\n{follow_up.text}".lower()
    assert "today" not in email("no-show-email").text.lower()


def test_follow_up_on_day_14_does_not_say_a_couple_of_days_ago() -> None:
    [step] = [s for s in CATALOG.by_key["consult-nurture"].steps if s.template == "follow-up"]
    assert step.offset == timedelta(days=14)
    body = body_of(email("follow-up"))
    assert not re.search(r"\b(a couple of|a few|two|2) days ago\b", body, re.IGNORECASE)


def test_rule_17_follow_up_subject_is_right_for_leads_who_have_not_booked() -> None:
    [step] = [s for s in CATALOG.by_key["consult-nurture"].steps if s.template == "follow-up"]
    assert step.when == "lead.stage == 'signed_up'"  # only leads who have not booked get it
    for lead in (new_lead(), new_lead(first_name="")):
        subject = email("follow-up", lead).subject
        assert "before your" not in subject.lower(), subject
        assert "free consultation" in subject


@pytest.mark.parametrize("booked", [False, True])
def test_consult_reminder_soon_says_soon_once(booked: bool) -> None:
    lead = sample_leads()["Booked lead with every field"] if booked else new_lead()
    body = sms("consult-reminder-soon", lead)
    assert len(re.findall(r"\bsoon\b", body, re.IGNORECASE)) == 1, body
    assert CLINIC.address in body


@pytest.mark.parametrize("key", LEAD_EMAILS)
def test_html_sign_off_keeps_each_line_on_its_own_line(key: str) -> None:
    html = email(key).html
    assert f"The care team at {CLINIC.name}" in html
    body = html[html.index("<p>") : html.index("</td></tr>", html.index("<p>"))]
    # A line the template wrote as its own line stays one: no soft break (a newline that the
    # HTML shows as a space) inside a paragraph or list item.
    for block in re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", body, re.DOTALL):
        assert not re.search(r"(?<!<br />)\n", block), block
    signed = re.search(r"(Warmly|With care),<br />\nThe care team at", body)
    assert signed or f"<p>The care team at {CLINIC.name}</p>" in body


@pytest.mark.parametrize("key", EMAILS)
def test_text_part_is_plain_text_not_markdown(key: str) -> None:
    rendered = email(key)
    assert "**" not in rendered.text
    assert "](" not in rendered.text
    source = (REPO / f"templates/email/{key}.md.j2").read_text()
    if "links.book" in source:
        assert re.search(rf"\w \({re.escape(str(CLINIC.booking_url))}\)", rendered.text)
    if "alert.lead_url" in source:
        assert f"Open their record ({SAMPLE_ALERT['lead_url']})" in rendered.text


@pytest.mark.parametrize("name", ["**x**", "[a](http://evil.example)", "<https://evil.example>"])
def test_text_part_still_shows_a_hostile_name_literally(name: str) -> None:
    rendered = email("welcome", new_lead(first_name=name))
    assert f"Hi {name}," in rendered.text
    assert f"request, {name}" in rendered.subject
    assert 'evil.example"' not in rendered.html and "<strong>x</strong>" not in rendered.html


def test_text_part_reads_lists_quotes_and_links_as_a_person_would() -> None:
    source = (
        "---\nsubject: Hi\n---\n**Steps**\n\n1. *Call* [us](tel:+12085550134)\n2. Write to "
        "<care@example.org>\n\n- one\n- [book]({{ links.book }})\n\n> quoted\n> twice\n\n"
        "With care,\\\nThe care team"
    )
    context = content.context_for(
        new_lead(), clinic=CLINIC, public_url=PUBLIC_URL, secret=b"t", purpose=Purpose.CARE
    )
    rendered = Renderer().render_email(source, LAYOUTS, context, name="email/t")
    assert body_of(rendered) == (
        "Steps\n\n1. Call us (tel:+12085550134)\n2. Write to care@example.org\n\n"
        f"- one\n- book ({CLINIC.booking_url})\n\n> quoted\n> twice\n\n"
        "With care,\nThe care team\n"
    )
