"""Template checks, one module for the studio, `nurture templates lint` and publish (which
refuses on any error).

A template is marketing's code, sent to vulnerable people: it is rendered for every sample
lead, its text is measured and read for words a carrier would reject or a lock screen should
not show, and its e-mail keeps the unsubscribe link and postal address the law asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError, meta, nodes

from nurture import content
from nurture.config.clinic import Clinic, Disclosures
from nurture.config.policy import Policy
from nurture.content import hipaa, tracked_links
from nurture.content.render_budget import BudgetedSandbox
from nurture.content.rendering import (
    BUDGET_EXCEEDED,
    EmailLayouts,
    Renderer,
    RenderError,
    split_front_matter,
)
from nurture.content.samples import SAMPLE_ALERT, edge_case_leads, sample_leads
from nurture.content.sms_encoding import measure
from nurture.content.variables import KnownNames, unknown_names
from nurture.db.models import Channel, Lead, Purpose
from nurture.program.sequences import Catalog

# Reaching any of these from a template means trying to get out of the sandbox.
INTERNAL_ATTRIBUTES = frozenset({
    "mro", "func_globals", "func_code", "gi_frame", "gi_code", "cr_frame", "f_globals", "f_locals",
    "f_builtins", "tb_frame", "co_code", "im_func", "im_self",
})  # fmt: skip
REPLY_PURPOSES = {
    "optin-confirmation": Purpose.OPTIN,
    "stop-confirmation": Purpose.CARE,
    "help-reply": Purpose.CARE,
    "crisis-reply": Purpose.CARE,
    "optin-not-found": Purpose.CARE,
    "confirm-reply": Purpose.CARE,
}
URL = re.compile(r"""(?:href|src)=["']([^"']+)["']|(https?://[^\s)<>"']+)""")


@dataclass(frozen=True)
class Finding:
    level: str  # "error" blocks publishing; "warning" does not
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.level}: {where}{self.message}"


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, level: str, message: str, line: int | None = None) -> None:
        finding = Finding(level, message, line)
        if finding not in self.findings:
            self.findings.append(finding)


def purposes_for(catalog: Catalog, channel: Channel, key: str) -> set[Purpose]:
    """How a template is used: by the sequences' steps, as a reply, or as a staff alert."""
    found = {
        step.purpose
        for sequence in catalog.by_key.values()
        for step in sequence.steps
        if step.channel is channel and key in step.templates
    }
    if key in REPLY_PURPOSES and channel is Channel.SMS:
        found.add(REPLY_PURPOSES[key])
    if key.startswith("staff-"):
        found.add(Purpose.ALERT)
    return found or {Purpose.CARE}


def sent_by_sequences(catalog: Catalog, channel: Channel, key: str) -> bool:
    """A sequence step of a tracked purpose sends this template: its links are tracked."""
    return any(
        step.channel is channel
        and key in step.templates
        and step.purpose in tracked_links.TRACKED_PURPOSES
        for sequence in catalog.by_key.values()
        for step in sequence.steps
    )


@dataclass(frozen=True)
class LintTarget:
    channel: Channel
    key: str
    source: str
    purposes: set[Purpose]
    # A sequence step sends it, so its links go out through /r/{token}: its length is counted
    # with those (what is measured is what is sent).
    tracked: bool = False


@dataclass(frozen=True)
class _Renders:
    """What rendering a template for a sample lead needs."""

    target: LintTarget
    renderer: Renderer
    layouts: EmailLayouts
    policy: Policy
    clinic: Clinic
    public_url: str


def lint_template(
    target: LintTarget,
    *,
    renderer: Renderer,
    layouts: EmailLayouts,
    policy: Policy,
    clinic: Clinic,
    public_url: str,
) -> LintReport:
    report = LintReport()
    _check_structure(target, report, _known_names(target, clinic, public_url))
    if not report.ok:
        return report  # a template that cannot compile or reaches internals is not rendered
    for problem in hipaa.category_problems(target.source, target.purposes):
        report.add("error", problem)
    renders = _Renders(target, renderer, layouts, policy, clinic, public_url)
    # The edge cases must render, in budget and without None; length and wording are judged
    # on the ordinary samples, or every text that prints a long name would warn.
    leads = [(label, lead, True) for label, lead in sample_leads().items()]
    leads += [(label, lead, False) for label, lead in edge_case_leads().items()]
    for label, lead, judged in leads:
        if _render_for(renders, label, lead, judged=judged, report=report):
            break  # over budget: rendering it for more leads would only take longer
    return report


def _render_for(
    renders: _Renders, label: str, lead: Lead, *, judged: bool, report: LintReport
) -> bool:
    """Render for one lead and check what it says; True when the render went over budget."""
    target = renders.target
    name = f"{target.channel.value}/{target.key}"
    for purpose in sorted(target.purposes):
        context = content.context_for(
            lead,
            clinic=renders.clinic,
            public_url=renders.public_url,
            secret=b"lint",
            purpose=purpose,
            alert=SAMPLE_ALERT if purpose is Purpose.ALERT else None,
        )
        try:
            if target.channel is Channel.SMS:
                body = renders.renderer.render_sms(target.source, context, name=name)
                _check_none(body, label, report)
                if judged:
                    sent = body
                    if target.tracked:
                        sent = tracked_links.representative(
                            body,
                            public_url=renders.public_url,
                            keep=[context.links.unsubscribe, context.links.preferences],
                        )
                    _check_sms(target, body, sent, purpose, label, renders.policy, report)
            else:
                email = renders.renderer.render_email(
                    target.source, renders.layouts, context, name=name
                )
                _check_none(f"{email.subject}\n{email.text}", label, report)
                if judged:
                    _check_email(
                        email.subject,
                        email.html,
                        email.text,
                        purpose,
                        label,
                        context.links.unsubscribe,
                        renders.clinic,
                        renders.policy,
                        renders.public_url,
                        report,
                    )
        except RenderError as error:
            report.add(
                "error", f"does not render for the sample “{label}”: {_without_name(error, name)}"
            )
            if BUDGET_EXCEEDED in str(error):
                return True
    return False


def _check_none(rendered: str, label: str, report: LintReport) -> None:
    if re.search(r"\bNone\b", rendered):
        report.add(
            "error", f"prints None for the sample “{label}”: guard the empty field with {{% if %}}"
        )


def _without_name(error: RenderError, name: str) -> str:
    return str(error).removeprefix(f"{name}: ")


def _known_names(target: LintTarget, clinic: Clinic, public_url: str) -> KnownNames:
    """The names a render for this template's purposes offers, from a real context: a staff
    alert also has ``alert.*``."""
    alerting = Purpose.ALERT in target.purposes
    context = content.context_for(
        next(iter(sample_leads().values())),
        clinic=clinic,
        public_url=public_url,
        secret=b"lint",
        purpose=Purpose.ALERT if alerting else min(target.purposes),
        alert=SAMPLE_ALERT if alerting else None,
    )
    return KnownNames.of(context)


# Only parses, so it is shared; its filters and tests are the ones a render can use.
_STRUCTURE = BudgetedSandbox()


def _check_structure(target: LintTarget, report: LintReport, names: KnownNames) -> None:
    environment = _STRUCTURE
    sources: list[tuple[str, int]] = [(target.source, 0)]
    if target.channel is Channel.EMAIL:
        try:
            meta_fields, body, body_line = split_front_matter(target.source, "template")
        except RenderError as error:
            report.add("error", str(error).removeprefix("template: "))
            return
        sources = [(body, body_line - 1)] + [(str(v), 0) for v in meta_fields.values()]
    for source, offset in sources:
        try:
            tree = environment.parse(source)
        except TemplateSyntaxError as error:
            report.add("error", f"syntax: {error.message}", (error.lineno or 0) + offset)
            continue
        known = True
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test)):
            line = node.lineno + offset
            if isinstance(node, nodes.Filter) and node.name not in environment.filters:
                report.add("error", f"unknown filter {node.name!r}", line)
                known = False
                continue
            if isinstance(node, nodes.Test) and node.name not in environment.tests:
                report.add("error", f"unknown test {node.name!r} (after 'is')", line)
                known = False
                continue
            if isinstance(node, nodes.Getattr):
                name = node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                name = str(node.arg.value)
            elif isinstance(node, nodes.Filter) and node.name == "attr":
                report.add("error", "the attr filter is not allowed in templates", line)
                continue
            else:
                continue
            if name.startswith("_") or name in INTERNAL_ATTRIBUTES:
                report.add("error", f"reaches Python internals ({name}); templates may not", line)
        if not known:
            continue  # finding the variables compiles the template, which would fail again
        try:
            undeclared = meta.find_undeclared_variables(tree)  # compiles: checks filter names
        except TemplateSyntaxError as error:
            report.add("error", error.message or str(error), (error.lineno or 0) + offset)
            continue
        # A misspelt name would only fail at render, once per sample and without a hint.
        for unknown in unknown_names(tree, names, undeclared=undeclared, offset=offset):
            report.add("error", unknown.message, unknown.line)


def _matches(patterns: Iterable[str], text: str) -> list[str]:
    found = []
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            found.append(match.group(0))
    return found


def _check_sms(
    target: LintTarget,
    body: str,
    sent: str,
    purpose: Purpose,
    label: str,
    policy: Policy,
    report: LintReport,
) -> None:
    """``body`` is what the template says (its words are judged); ``sent`` is what leaves, its
    links tracked (its length is measured)."""
    shape = measure(sent)
    if shape.encoding == "UCS-2":
        chars = ", ".join(repr(c) for c in shape.non_gsm_characters)
        report.add(
            "warning", f"{chars} switches the text to UCS-2: 70 characters a segment instead of 160"
        )
    size = f"{shape.segments} segments for “{label}” ({shape.units} {_unit(shape.encoding)})"
    if shape.segments > 4:
        report.add("error", f"{size}; keep it to 4 at most")
    elif shape.segments > 2:
        report.add("warning", f"{size}; 2 or fewer is the aim")
    for word in _matches(policy.content.sms_forbidden, body):
        report.add(
            "error",
            f"“{word}” may not appear in a text (drug, diagnosis, dose, price or offer); "
            "carriers reject it and texts show on lock screens",
        )
    if purpose is Purpose.MARKETING and "stop" not in body.lower():
        report.add(
            "error", "a marketing text must tell people how to opt out (Reply STOP to opt out)"
        )
    for phrase in policy.content.required.get(f"sms/{target.key}", []):
        if phrase not in body:
            report.add("error", f"this text must keep the words “{phrase}”")
    _check_frequency_promise(body, policy, report)


# "Up to 4 msgs/week", "4 msg/wk", "4 messages per week": what a text promises people.
_WEEKLY_PROMISE = re.compile(
    r"(\d+)\s*(?:msgs?|messages?|texts?)\s*(?:/|per|a)\s*(?:week|wk)\b", re.I
)


def _check_frequency_promise(body: str, policy: Policy, report: LintReport) -> None:
    problem = frequency_promise_problem(body, policy)
    if problem is not None:
        report.add("error", problem)


def frequency_promise_problem(text: str, policy: Policy) -> str | None:
    """A promise of how often texts come must be one the policy keeps (compliance rule 25)."""
    match = _WEEKLY_PROMISE.search(text)
    if match is None:
        return None
    promised, cap = int(match.group(1)), policy.caps.sms_marketing_per_7d
    if cap is not None and cap <= promised:
        return None
    allows = "no weekly limit" if cap is None else f"up to {cap} in 7 days"
    return (
        f"promises “{match.group(0)}” but policy.yaml allows {allows}: set "
        f"caps.sms_marketing_per_7d to {promised} or change the promise"
    )


def lint_disclosures(disclosures: Disclosures, policy: Policy) -> LintReport:
    """The consent wording beside the form's boxes keeps its promises too."""
    report = LintReport()
    for name in ("email_marketing", "sms_marketing", "sms_care"):
        problem = frequency_promise_problem(getattr(disclosures, name), policy)
        if problem is not None:
            report.add("error", f"{name}: {problem}")
    return report


def _unit(encoding: str) -> str:
    return "characters" if encoding == "GSM-7" else "UTF-16 units"


def _check_email(
    subject: str,
    html: str,
    text: str,
    purpose: Purpose,
    label: str,
    unsubscribe: str,
    clinic: Clinic,
    policy: Policy,
    public_url: str,
    report: LintReport,
) -> None:
    if not subject.strip():
        report.add("error", "the subject is empty")
    if purpose is Purpose.MARKETING:
        if unsubscribe not in html or unsubscribe not in text:
            report.add(
                "error", "a marketing e-mail must show the unsubscribe link (the layout adds it)"
            )
        if clinic.address not in html or clinic.address not in text:
            report.add(
                "error", "a marketing e-mail must show the clinic's postal address (CAN-SPAM)"
            )
    if purpose is Purpose.CARE:
        for word in _matches(policy.content.care_email_forbidden, f"{subject}\n{text}"):
            report.add(
                "error", f"“{word}” is selling: care e-mail must not carry marketing content"
            )
    if purpose is not Purpose.ALERT:  # staff alerts quote the person; they go to the care team
        for words in _matches(policy.content.email_health_details, f"{subject}\n{text}"):
            report.add(
                "error",
                f"“{words}” is a health detail about the person: e-mail may explain the "
                "condition and the treatment in general, never say what is theirs",
            )
    for match in URL.finditer(html):
        link = match.group(1) or match.group(2)
        scheme = urlsplit(link).scheme
        if scheme in {"mailto", "tel"} or link.startswith(public_url):
            continue
        if scheme != "https":
            report.add("error", f"link {link!r} must be an absolute https:// address")


__all__ = [
    "Finding",
    "LintReport",
    "LintTarget",
    "frequency_promise_problem",
    "lint_disclosures",
    "lint_template",
    "purposes_for",
]
