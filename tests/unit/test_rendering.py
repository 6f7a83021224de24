"""Rendering in the sandbox: what marketing writes cannot run code or leave silent gaps."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nurture.content.rendering import (
    ClinicView,
    ConsultView,
    EmailLayouts,
    LeadView,
    Links,
    RenderContext,
    Renderer,
    RenderError,
    describe_local_time,
    split_front_matter,
)
from nurture.content.samples import SAMPLE_ALERT
from tests.conftest import REPO

CLINIC = ClinicView(
    name="Test Clinic",
    sms_program_name="TClinic",
    phone="(208) 555-0100",
    email="care@clinic.test",
    address="1 Main St, Idaho Falls, ID 83402",
    booking_url="https://clinic.test/book",
    website_url="https://clinic.test",
    timezone="America/Boise",
    sms_frequency="up to 4 msgs/week",
)


BOOKED = ConsultView(
    at=datetime(2026, 3, 11, 10, 30, tzinfo=ZoneInfo("America/Denver")),
    when="Wed, Mar 11 at 10:30 AM MDT",
)


def context(
    *,
    first_name: str = "Ana",
    marketing: bool = True,
    staff: bool = False,
    consult: ConsultView | None = None,
) -> RenderContext:
    return RenderContext(
        lead=LeadView(
            first_name=first_name,
            last_name="Rivera",
            email="a@example.com",
            phone="+12085550123",
            stage="signed_up",
        ),
        clinic=CLINIC,
        consult=consult or ConsultView(at=None, when=None),
        links=Links(
            unsubscribe="https://n.test/u/TOKEN",
            preferences="https://n.test/u/TOKEN",
            book="https://clinic.test/book",
        ),
        marketing=marketing,
        audience="staff" if staff else "lead",
        alert=SAMPLE_ALERT if staff else {},
    )


LAYOUTS = EmailLayouts(
    html=(REPO / "templates/layouts/email.html.j2").read_text(),
    text=(REPO / "templates/layouts/email.txt.j2").read_text(),
)


def test_sms_renders_the_context() -> None:
    body = Renderer().render_sms("Hi {{ lead.first_name }}, {{ clinic.name }}", context(), name="t")
    assert body == "Hi Ana, Test Clinic"


def test_a_misspelt_variable_is_an_error_not_a_gap() -> None:
    with pytest.raises(RenderError, match=r"undefined variable.*frist_name"):
        Renderer().render_sms("Hi {{ lead.frist_name }}", context(), name="sms/t")


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(RenderError, match=r"sms/t: line 2: "):
        Renderer().render_sms("ok\n{% if %}", context(), name="sms/t")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ lead.__class__ }}",
        "{{ lead.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lead.first_name.__class__.__base__ }}",
        "{% set x = lead.attributes.update({'a': 1}) %}{{ x }}",
        "{{ lead.first_name.format.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
    ],
)
def test_templates_cannot_reach_python_internals(payload: str) -> None:
    with pytest.raises(RenderError):
        Renderer().render_sms(payload, context(), name="t")


def test_an_exception_inside_a_template_becomes_a_render_error() -> None:
    with pytest.raises(RenderError, match="ZeroDivisionError"):
        Renderer().render_sms("{{ 1 / 0 }}", context(), name="t")


def test_email_html_escapes_what_the_lead_typed() -> None:
    source = "---\nsubject: Hi {{ lead.first_name }}\n---\nHello **{{ lead.first_name }}**"
    email = Renderer().render_email(
        source, LAYOUTS, context(first_name="<script>x</script>"), name="e"
    )
    assert "<script>x</script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert email.subject == "Hi <script>x</script>"  # a header is text, not HTML
    assert "<strong>" in email.html


def test_email_marketing_footer_has_unsubscribe_address_and_988() -> None:
    source = "---\nsubject: Hello\n---\nBody"
    marketing = Renderer().render_email(source, LAYOUTS, context(marketing=True), name="e")
    care = Renderer().render_email(source, LAYOUTS, context(marketing=False), name="e")
    for part in (marketing.html, marketing.text):
        assert "https://n.test/u/TOKEN" in part
        assert "1 Main St, Idaho Falls, ID 83402" in part
        assert "988" in part
    assert "https://n.test/u/TOKEN" not in care.html + care.text
    assert "988" in care.html and "988" in care.text


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("no front matter", "start with front matter"),
        ("---\nsubject: x\n", "not closed"),
        ("---\npreheader: x\n---\nbody", "non-empty subject"),
        ("---\nsubject: x\nfrom: y\n---\nbody", "unknown front matter"),
        ("---\nsubject: [\n---\nbody", "not valid YAML"),
        ("---\nsubject: '{{ \"\" }}'\n---\nbody", "subject renders empty"),
    ],
)
def test_email_front_matter_problems_are_named(source: str, fragment: str) -> None:
    with pytest.raises(RenderError, match=fragment):
        Renderer().render_email(source, LAYOUTS, context(), name="email/x")


def test_email_body_errors_report_the_file_line() -> None:
    source = "---\nsubject: x\n---\nline four\n{{ lead.nope }}\n{% endif %}"
    with pytest.raises(RenderError, match=r"line 6"):
        Renderer().render_email(source, LAYOUTS, context(), name="email/x")


def test_front_matter_read_once_is_still_each_callers_own() -> None:
    source = "---\nsubject: Hello\n---\nbody"
    fields, body, line = split_front_matter(source, "email/x")
    fields["subject"] = "changed by a caller"
    again, _, _ = split_front_matter(source, "email/x")
    assert (again, body, line) == ({"subject": "Hello"}, "body", 4)


def test_a_broken_front_matter_is_reported_every_time() -> None:
    for _ in range(2):  # the cache keeps answers, never the refusal of a broken template
        with pytest.raises(RenderError, match="not closed"):
            split_front_matter("---\nsubject: x\n", "email/x")


def test_compiled_templates_are_cached() -> None:
    renderer = Renderer()
    renderer.render_sms("{{ lead.first_name }}", context(), name="t")
    cache = renderer._text._templates
    before = len(cache)
    renderer.render_sms("{{ lead.first_name }}", context(first_name="Bo"), name="t")
    assert len(cache) == before == 1


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (datetime(2026, 3, 3, 21, 30, tzinfo=UTC), "America/Boise", "Tue, Mar 3 at 2:30 PM MST"),
        (datetime(2026, 7, 3, 16, 5, tzinfo=UTC), "America/Boise", "Fri, Jul 3 at 10:05 AM MDT"),
        (
            datetime(2026, 7, 3, 16, 5, tzinfo=UTC),
            "America/Los_Angeles",
            "Fri, Jul 3 at 9:05 AM PDT",
        ),
        (datetime(2026, 1, 1, 5, 0, tzinfo=UTC), "America/New_York", "Thu, Jan 1 at 12:00 AM EST"),
        (datetime(2026, 1, 1, 22, 0, tzinfo=UTC), "Pacific/Honolulu", "Thu, Jan 1 at 12:00 PM HST"),
    ],
)
def test_local_time_is_described_in_the_leads_zone(
    instant: datetime, zone: str, expected: str
) -> None:
    assert describe_local_time(instant, ZoneInfo(zone)) == expected


@pytest.mark.parametrize("first_name", ["Ana", ""])  # someone who only texted us has no name
@pytest.mark.parametrize("consult", [None, BOOKED])
def test_every_shipped_template_renders(first_name: str, consult: ConsultView | None) -> None:
    renderer = Renderer()
    for path in sorted((REPO / "templates/sms").glob("*.txt.j2")):
        body = renderer.render_sms(
            path.read_text(), context(first_name=first_name, consult=consult), name=path.name
        )
        assert body.strip()
        assert "None" not in body, path.name
    for path in sorted((REPO / "templates/email").glob("*.md.j2")):
        staff = path.name.startswith("staff-")
        email = renderer.render_email(
            path.read_text(),
            LAYOUTS,
            context(first_name=first_name, staff=staff, consult=consult),
            name=path.name,
        )
        assert email.subject
        assert not email.subject.startswith((",", " ")), path.name
        assert "None" not in email.text, path.name
        assert "Hi ," not in email.text, path.name
        assert ("staff of Test Clinic" if staff else "Test Clinic") in email.text
        assert ("988 (Suicide" in email.text) is not staff  # the lead's footer, not staff's


def test_rule_16_every_shipped_text_is_gsm7_and_at_most_two_segments() -> None:
    from nurture.content.sms_encoding import measure

    renderer = Renderer()
    for path in sorted((REPO / "templates/sms").glob("*.txt.j2")):
        for consult in (None, BOOKED):
            body = renderer.render_sms(
                path.read_text(), context(first_name="Maximiliana", consult=consult), name=path.name
            )
            shape = measure(body)
            assert shape.encoding == "GSM-7", (path.name, shape.non_gsm_characters)
            assert shape.segments <= 2, (path.name, shape.units)


def test_rule_15_no_text_names_the_drug_a_diagnosis_or_a_price() -> None:
    from nurture.config.clinic import load_clinic
    from nurture.content.compose import clinic_view

    renderer = Renderer()
    real = replace(context(consult=BOOKED), clinic=clinic_view(load_clinic(REPO / "config")))
    for path in sorted((REPO / "templates/sms").glob("*.txt.j2")):
        body = renderer.render_sms(path.read_text(), real, name=path.name).lower()
        for word in (
            "ketamine",
            "spravato",
            "esketamine",
            "depression",
            "$",
            "price",
            "free infusion",
        ):
            assert word not in body, (path.name, word)


# A lead's name is text in every part of an e-mail (issue 10, finding 2) --------------------------

MARKDOWN_NAMES = [
    "[Verify your account](https://evil.example)",
    "![x](https://evil.example/pixel.png)",
    "<img src=x onerror=alert(1)>",
    "**bold**",
    "# heading",
    "- item",
    "1. first",
    "<https://evil.example>",
    "a\\b `code` _under_ ~~strike~~ &amp;",
]
NAME_EMAIL = (
    "---\nsubject: Hi {{ lead.first_name }}\npreheader: For {{ lead.first_name }}\n---\n"
    "{{ lead.first_name }}\n\nHello {{ lead.first_name }}, [Book]({{ links.book }}) or "
    "<{{ clinic.website_url }}>."
)


@pytest.mark.parametrize("name", MARKDOWN_NAMES)
def test_a_name_is_text_in_every_part_and_never_markup_in_html(name: str) -> None:
    import html

    email = Renderer().render_email(NAME_EMAIL, LAYOUTS, context(first_name=name), name="e")
    start = email.html.index("<p>")
    body = email.html[start : email.html.index("</td></tr>", start)]  # the body, not the layout
    links = re.findall(r"<a href=\"([^\"]*)\"", body)
    assert links[:2] == ["https://clinic.test/book", "https://clinic.test"]  # only the clinic's
    assert "evil.example" not in "".join(links)
    for tag in ("<img", "<h1", "<ul", "<ol", "<li", "<strong", "<em", "<code", "<del"):
        assert tag not in body, tag
    paragraph = re.search(r"<p>(.*?)</p>", body, re.DOTALL)
    assert paragraph is not None
    assert html.unescape(paragraph.group(1)) == name  # shown exactly as typed, no backslashes
    # The plain-text parts are not Markdown: they show the name unchanged, without backslashes,
    # and the clinic's own links as "text (url)".
    assert email.subject == f"Hi {name}"
    assert email.preheader == f"For {name}"
    assert email.text.startswith(
        f"{name}\n\nHello {name}, Book (https://clinic.test/book) or https://clinic.test."
    )
    sms = Renderer().render_sms("Hi {{ lead.first_name }}", context(first_name=name), name="t")
    assert sms == f"Hi {name}"


def test_the_staff_alerts_record_link_still_works() -> None:
    source = (REPO / "templates/email/staff-reply-alert.md.j2").read_text()
    alert = {**SAMPLE_ALERT, "body": "[click](https://evil.example)", "lead_name": "**X**"}
    staff = replace(context(staff=True), alert=alert)
    email = Renderer().render_email(source, LAYOUTS, staff, name="e")
    assert f'<a href="{SAMPLE_ALERT["lead_url"]}">' in email.html
    assert 'evil.example"' not in email.html and "<strong>X</strong>" not in email.html
