"""Template lint: one module for the studio, the CLI and publish."""

from __future__ import annotations

import pytest

from nurture.config.clinic import load_clinic, load_disclosures
from nurture.config.policy import load_policy
from nurture.content.lint import LintReport, LintTarget, lint_disclosures, lint_template
from nurture.content.rendering import EmailLayouts, Renderer
from nurture.db.models import Channel, Purpose
from tests.conftest import REPO

CLINIC = load_clinic(REPO / "config")
POLICY = load_policy(REPO / "config")
LAYOUTS = EmailLayouts(
    html=(REPO / "templates/layouts/email.html.j2").read_text(),
    text=(REPO / "templates/layouts/email.txt.j2").read_text(),
)
GOOD_SMS = (
    "{{ clinic.sms_program_name }}: Pick a time for your consultation: {{ links.book }} "
    "Reply STOP to opt out."
)
GOOD_EMAIL = (
    "---\nsubject: Hello {{ lead.first_name or 'there' }}\n---\nHi, [book]({{ links.book }})."
)


def with_category(source: str, purposes: set[Purpose]) -> str:
    """The other checks' tests declare a fitting HIPAA category, as every real template does:
    at the end, so the line numbers those tests expect stay where they are."""
    if "hipaa_category" in source:
        return source
    category = "own_services" if Purpose.MARKETING in purposes else "operations"
    return source + "{#- hipaa_category: " + category + " #}"


def lint(
    source: str,
    channel: Channel = Channel.SMS,
    purposes: set[Purpose] | None = None,
    key: str = "test",
    layouts: EmailLayouts = LAYOUTS,
) -> LintReport:
    purposes = purposes or {Purpose.MARKETING}
    return lint_template(
        LintTarget(channel, key, with_category(source, purposes), purposes),
        renderer=Renderer(),
        layouts=layouts,
        policy=POLICY,
        clinic=CLINIC,
        public_url="https://nurture.example.org",
    )


def messages(report: LintReport, level: str = "error") -> str:
    return "\n".join(str(f) for f in report.findings if f.level == level)


def test_clean_templates_pass() -> None:
    assert lint(GOOD_SMS).findings == []
    assert lint(GOOD_EMAIL, Channel.EMAIL).findings == []


def test_syntax_errors_have_line_numbers() -> None:
    report = lint("line one\n{% if lead.first_name %}\nno end", purposes={Purpose.CARE})
    [error] = report.errors
    assert error.line == 2  # the {% if %} that is never closed
    assert "syntax" in error.message
    assert "endif" in error.message


def test_email_body_lines_are_the_file_lines() -> None:
    report = lint("---\nsubject: Hi\n---\nfine\n{{ lead.first_name ", Channel.EMAIL)
    assert report.errors[0].line == 5


def test_variables_outside_the_documented_context() -> None:
    assert "unknown variable 'user'" in messages(lint("Hi {{ user.name }} STOP"))
    assert "unknown name lead.nickname" in messages(lint("Hi {{ lead.nickname }} STOP"))


def test_a_template_that_breaks_for_a_sample_without_optional_fields() -> None:
    report = lint(
        "{{ clinic.sms_program_name }}: see you {{ consult.when.upper() }}. Reply STOP to opt out."
    )
    assert "does not render for the sample “New lead, no consult yet”" in messages(report)


def test_none_printed_for_a_missing_field_is_an_error() -> None:
    report = lint(
        "{{ clinic.sms_program_name }}: your consultation is {{ consult.when }}. STOP to opt out."
    )
    assert "prints None" in messages(report)


def test_ucs2_is_named_and_segments_counted() -> None:
    curly = lint("{{ clinic.sms_program_name }}: Don’t forget to book. Reply STOP to opt out.")
    assert "'’' switches the text to UCS-2" in messages(curly, "warning")
    three = lint("{{ clinic.sms_program_name }}: " + "x" * 330 + " Reply STOP to opt out.")
    assert "3 segments" in messages(three, "warning") and three.ok
    five = lint("{{ clinic.sms_program_name }}: " + "x" * 700 + " Reply STOP to opt out.")
    assert "keep it to 4 at most" in messages(five)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Ask about Ketamine today", "Ketamine"),
        ("Spravato is here", "Spravato"),
        ("help for depression", "depression"),
        ("just $99 a session", "$9"),
        ("50mg doses", "50mg"),
        ("20% off this week", "20% off"),
        ("use this coupon", "coupon"),
        ("our infusions", "infusions"),
    ],
)
def test_texts_never_carry_drug_names_diagnoses_doses_prices_or_offers(
    text: str, word: str
) -> None:
    report = lint("{{ clinic.sms_program_name }}: " + text + ". Reply STOP to opt out.")
    assert f"“{word}” may not appear in a text" in messages(report)


def test_the_clinics_full_name_is_caught_in_a_text() -> None:
    assert "may not appear in a text" in messages(
        lint("{{ clinic.name }}: hello. Reply STOP to opt out.")
    )


def test_marketing_texts_must_say_how_to_opt_out() -> None:
    assert "must tell people how to opt out" in messages(
        lint("{{ clinic.sms_program_name }}: book now")
    )
    assert lint("{{ clinic.sms_program_name }}: see you soon", purposes={Purpose.CARE}).ok


def test_compliance_texts_keep_their_required_words() -> None:
    report = lint(
        "{{ clinic.sms_program_name }}: welcome! Reply STOP to opt out.",
        key="optin-confirmation",
        purposes={Purpose.OPTIN},
    )
    assert "must keep the words “Msg & data rates may apply”" in messages(report)


def test_marketing_email_keeps_unsubscribe_and_address() -> None:
    broken = EmailLayouts(html="<p>{{ body_html }}</p>", text="{{ body_text }}")
    report = lint(GOOD_EMAIL, Channel.EMAIL, layouts=broken)
    assert "unsubscribe link" in messages(report)
    assert "postal address" in messages(report)
    assert lint(GOOD_EMAIL, Channel.EMAIL, purposes={Purpose.CARE}, layouts=broken).ok


def test_a_script_link_never_becomes_a_link() -> None:
    from tests.unit.test_rendering import context

    email = Renderer().render_email(
        "---\nsubject: Hi\n---\n[book](javascript:alert(1))", LAYOUTS, context(), name="e"
    )
    assert 'href="javascript' not in email.html


@pytest.mark.parametrize("link", ["http://clinic.example/book", "/book"])
def test_links_must_be_absolute_https(link: str) -> None:
    report = lint(f"---\nsubject: Hi\n---\n[book]({link})", Channel.EMAIL)
    assert "must be an absolute https:// address" in messages(report)


def test_care_email_must_not_sell() -> None:
    report = lint(
        "---\nsubject: Your appointment\n---\nA limited time discount!",
        Channel.EMAIL,
        purposes={Purpose.CARE},
    )
    assert "care e-mail must not carry marketing content" in messages(report)


INJECTIONS = [
    "{{ lead.__class__ }}",
    "{{ lead.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ lead|attr('__class__') }}",
    "{{ lead['__class__'] }}",
    "{{ (lead.first_name).__class__.__base__.__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config }}",
    "{{ request.application.__globals__ }}",
    "{{ range.__self__ }}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_template_injection_is_a_lint_error_and_renders_nothing_of_python(payload: str) -> None:
    report = lint(f"{{{{ clinic.sms_program_name }}}}: {payload} Reply STOP to opt out.")
    assert not report.ok
    from nurture.content.rendering import RenderContext, RenderError
    from tests.unit.test_rendering import context

    ctx: RenderContext = context()
    try:
        rendered = Renderer().render_sms(payload, ctx, name="t")
    except RenderError:
        return
    for leak in ("<class", "subprocess", "Popen", "builtins", "function", "module"):
        assert leak not in rendered


# Templates that break, or run away, for some leads only (issue 10, findings 4 and 6) ------------


def test_an_unknown_filter_or_test_is_a_lint_error_with_its_line() -> None:
    report = lint(
        "{{ clinic.sms_program_name }}: hi\n{{ lead.first_name|nope }}\n"
        "{% if lead is nah %}x{% endif %} Reply STOP to opt out."
    )
    assert [str(f) for f in report.errors] == [
        "error: line 2: unknown filter 'nope'",
        "error: line 3: unknown test 'nah' (after 'is')",
    ]


def test_a_runaway_template_is_a_lint_error_found_quickly() -> None:
    import time

    started = time.monotonic()
    report = lint(
        "---\nsubject: Hi\n---\n{% for i in range(99999) %}{% for j in range(99999) %}"
        "{% endfor %}{% endfor %}",
        Channel.EMAIL,
    )
    assert time.monotonic() - started < 10  # stops at the first lead, not one budget per lead
    [error] = report.errors
    assert "line 4: render budget exceeded: took longer than" in error.message


@pytest.mark.parametrize(
    ("guard", "label"),
    [
        ('lead.first_name == "Zoë"', "A name with accents (Zoë Ñúñez)"),
        ("lead.first_name|length > 100", "A very long name"),
        ('lead.stage == "lost"', "Lost lead with a past consult"),
        ('lead.stage == "patient"', "Patient, no consult on record"),
    ],
)
def test_a_template_slow_for_one_kind_of_lead_is_caught(guard: str, label: str) -> None:
    slow = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    report = lint(
        f"---\nsubject: Hi\n---\nHello.\n{{% if {guard} %}}{slow}{{% endif %}}", Channel.EMAIL
    )
    assert f"does not render for the sample “{label}”: line 5: render budget exceeded" in messages(
        report
    )


def test_a_template_broken_for_a_lead_without_a_phone_is_caught() -> None:
    report = lint(
        "{{ clinic.sms_program_name }}: we have {{ lead.phone[-4:] }}. Reply STOP to opt out."
    )
    assert "does not render for the sample “No last name, no phone”" in messages(report)


def test_every_shipped_template_lints_clean_for_every_sample_and_edge_case() -> None:
    from nurture.content.lint import purposes_for
    from nurture.content.template_store import FileTemplateStore
    from nurture.program.sequences import load_catalog

    files = FileTemplateStore(REPO / "templates")
    catalog = load_catalog(REPO / "config" / "sequences", templates=files.available())
    renderer = Renderer()
    for channel, key in sorted(files.available()):
        target = LintTarget(
            channel, key, files.get(channel, key).source, purposes_for(catalog, channel, key)
        )
        report = lint_template(
            target,
            renderer=renderer,
            layouts=LAYOUTS,
            policy=POLICY,
            clinic=CLINIC,
            public_url="https://nurture.example.org",
        )
        assert report.ok, (channel, key, [str(f) for f in report.errors])


def test_rule_25_lint_fails_when_a_text_promises_fewer_texts_than_the_policy_allows() -> None:
    promise = "{{ clinic.sms_program_name }}: up to 4 msgs/week. Reply STOP to opt out."
    assert not messages(lint(promise, purposes={Purpose.CARE}, key="nudge"))
    looser = POLICY.model_copy(
        update={"caps": POLICY.caps.model_copy(update={"sms_marketing_per_7d": 6})}
    )
    report = lint_template(
        LintTarget(Channel.SMS, "nudge", promise, {Purpose.CARE}),
        renderer=Renderer(),
        layouts=LAYOUTS,
        policy=looser,
        clinic=CLINIC,
        public_url="https://nurture.test",
    )
    assert "promises “4 msgs/week” but policy.yaml allows up to 6 in 7 days" in messages(report)


def test_rule_25_the_disclosure_wording_keeps_the_weekly_promise_too() -> None:
    disclosures = load_disclosures(REPO / "config")
    assert lint_disclosures(disclosures, POLICY).ok
    unlimited = POLICY.model_copy(
        update={"caps": POLICY.caps.model_copy(update={"sms_marketing_per_7d": None})}
    )
    report = lint_disclosures(disclosures, unlimited)
    assert [str(f) for f in report.errors] == [
        "error: sms_marketing: promises “4 msgs/week” but policy.yaml allows no weekly limit: "
        "set caps.sms_marketing_per_7d to 4 or change the promise"
    ]


@pytest.mark.parametrize(
    ("declaration", "purposes", "problem"),
    [
        ("", {Purpose.CARE}, "declare the template's HIPAA category"),
        ("{# hipaa_category: gossip -#}", {Purpose.CARE}, "is not one of treatment"),
        ("{# hipaa_category: own_services -#}", {Purpose.CARE}, "does not fit its use as a care"),
        ("{# hipaa_category: treatment -#}", {Purpose.MARKETING}, "use as a marketing message"),
        ("{# hipaa_category: third_party_marketing -#}", {Purpose.MARKETING}, "authorization"),
    ],
)
def test_rule_20_every_template_declares_a_hipaa_category_that_fits_its_use(
    declaration: str, purposes: set[Purpose], problem: str
) -> None:
    source = declaration + "\n{{ clinic.sms_program_name }}: see you soon. Reply STOP to opt out."
    report = lint_template(
        LintTarget(Channel.SMS, "nudge", source, purposes),
        renderer=Renderer(),
        layouts=LAYOUTS,
        policy=POLICY,
        clinic=CLINIC,
        public_url="https://nurture.test",
    )
    assert problem in messages(report)


def test_rule_20_a_fitting_category_passes_and_renders_to_nothing() -> None:
    source = "{# hipaa_category: treatment -#}\n{{ clinic.sms_program_name }}: see you soon."
    report = lint_template(
        LintTarget(Channel.SMS, "nudge", source, {Purpose.CARE}),
        renderer=Renderer(),
        layouts=LAYOUTS,
        policy=POLICY,
        clinic=CLINIC,
        public_url="https://nurture.test",
    )
    assert not messages(report)


@pytest.mark.parametrize(
    "sentence",
    [
        "Your dose will be 0.5 mg/kg.",
        "Your PHQ-9 score was 19.",
        "We know your depression has been hard.",
        "{{ lead.first_name }}, you were diagnosed with depression.",
        "Since you have treatment-resistant depression, we can help.",
    ],
)
def test_rule_21_an_email_never_states_a_health_detail_about_the_person(sentence: str) -> None:
    body = "Hi {{ lead.first_name }}. " + sentence + " [Book]({{ links.book }})"
    source = "---\nsubject: Hello\n---\n" + body
    assert "is a health detail about the person" in messages(
        lint(source, Channel.EMAIL, {Purpose.CARE})
    )


def test_rule_21_an_email_may_explain_the_condition_in_general() -> None:
    source = (
        "---\nsubject: Hello\n---\nTreatment-resistant depression is depression that has not "
        "eased after two or more medicines. Ketamine is studied for it. [Book]({{ links.book }})"
    )
    assert not messages(lint(source, Channel.EMAIL, {Purpose.MARKETING}))


def test_a_tracked_texts_segments_are_counted_with_its_tracked_link() -> None:
    # 300 characters as written: two segments. A sequence step sends its link through
    # /r/{token} (31 characters longer here), which makes it three: lint counts what is sent.
    head = f"{CLINIC.sms_program_name}: Book at https://k.example/b "
    tail = " Reply STOP to opt out."
    source = (
        "{{ clinic.sms_program_name }}: Book at https://k.example/b "
        + "x" * (300 - len(head) - len(tail))
        + tail
    )
    purposes = {Purpose.MARKETING}
    untracked = lint(source, purposes=purposes)
    assert "segments" not in messages(untracked, "warning")

    def tracked(flag: bool) -> LintReport:
        return lint_template(
            LintTarget(Channel.SMS, "test", with_category(source, purposes), purposes, flag),
            renderer=Renderer(),
            layouts=LAYOUTS,
            policy=POLICY,
            clinic=CLINIC,
            public_url="https://nurture.example.org",
        )

    assert "3 segments" in messages(tracked(True), "warning")
    assert "segments" not in messages(tracked(False), "warning")
