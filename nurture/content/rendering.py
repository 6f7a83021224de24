"""Rendering message templates in Jinja2's sandbox.

Marketing writes these templates, so they are untrusted code: they run in an
``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (a misspelt variable is an error,
never an empty gap in a message to a patient), see only plain values (never ORM objects), are
held to a render budget (:mod:`nurture.content.render_budget`: time, size, no huge values), and any
failure becomes a :class:`RenderError` that fails one message with a readable reason.

A lead types their own name, so in an e-mail's Markdown body every printed value is escaped for
Markdown before the Markdown is rendered: a name can never become a link, an image or a
heading. Only the clinic's configuration and ``links.*`` print as they are, so
``[Book]({{ links.book }})`` stays a link. The text part is rendered from the same parsed
Markdown as plain text (no asterisks, a link as "Book (https://…)"), so a name shows there exactly
as typed too.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from markupsafe import Markup

from nurture.content import render_budget
from nurture.content.render_budget import (
    EMAIL_BUDGET,
    SMS_BUDGET,
    BudgetedSandbox,
    RenderBudget,
    RenderBudgetExceededError,
)

FRONT_MATTER_FENCE = "---"


class RenderError(Exception):
    """A template could not be rendered; the message says where and why."""


BUDGET_EXCEEDED = "render budget exceeded"
# CommonMark lets a backslash escape any ASCII punctuation, and only those have a meaning.
MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


class TrustedText(str):
    """Text from the clinic's configuration: printed into Markdown as it is (a link target)."""

    __slots__ = ()


def escape_markdown(value: object) -> object:
    """Every value printed into a Markdown body, except trusted text, shows as the text it is."""
    if isinstance(value, TrustedText):
        return value
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", str(value))


def _trusted(view: Any) -> Any:
    """A copy of a frozen view whose text fields are TrustedText."""
    changes = {
        f.name: TrustedText(getattr(view, f.name))
        for f in fields(view)
        if isinstance(getattr(view, f.name), str)
    }
    return replace(view, **changes)


@dataclass(frozen=True)
class LeadView:
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    stage: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClinicView:
    name: str
    sms_program_name: str
    phone: str
    email: str
    address: str
    booking_url: str
    website_url: str
    timezone: str
    sms_frequency: str
    staffed_hours: str = ""  # when a person answers ("Mon-Fri 8am-6pm Mountain"): crisis reply


@dataclass(frozen=True)
class ConsultView:
    at: datetime | None  # aware, in the lead's zone
    when: str | None  # "Tue, Mar 3 at 2:30 PM MST"
    confirmed: bool = False  # the lead replied C (or confirmed otherwise)


@dataclass(frozen=True)
class Links:
    unsubscribe: str
    preferences: str
    book: str


@dataclass(frozen=True)
class RenderContext:
    lead: LeadView
    clinic: ClinicView
    consult: ConsultView
    links: Links
    marketing: bool  # the layout shows the marketing footer (unsubscribe) only when true
    audience: str = "lead"  # "staff" for alerts: a different footer, no lead-facing lines
    alert: dict[str, Any] = field(default_factory=dict)  # what a staff alert is about

    def variables(self) -> dict[str, Any]:
        return {
            "lead": self.lead,
            "clinic": self.clinic,
            "consult": self.consult,
            "links": self.links,
            "marketing": self.marketing,
            "audience": self.audience,
            "alert": self.alert,
        }


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    text: str
    html: str


@dataclass(frozen=True)
class EmailLayouts:
    html: str
    text: str


def describe_local_time(instant: datetime, zone: ZoneInfo) -> str:
    """Human text for an instant in a zone: ``Tue, Mar 3 at 2:30 PM MST``."""
    local = instant.astimezone(zone)
    hour = local.hour % 12 or 12
    return (
        f"{local:%a}, {local:%b} {local.day} at {hour}:{local:%M} "
        f"{'AM' if local.hour < 12 else 'PM'} {local.tzname()}"
    )


def consult_view(
    consult_at: datetime | None, zone: ZoneInfo, *, confirmed: bool = False
) -> ConsultView:
    if consult_at is None:
        return ConsultView(at=None, when=None)
    return ConsultView(
        at=consult_at.astimezone(zone),
        when=describe_local_time(consult_at, zone),
        confirmed=confirmed,
    )


# The text part ----------------------------------------------------------------------------------
# Read the way a person reads a plain-text e-mail: no asterisks, a link as "text (url)", lists
# with "-" or "1.", quotes with ">". It is rendered from the same tokens as the HTML, so what a
# lead typed (escaped for Markdown) is a text token here too and shows exactly as typed.


def plain_text(tokens: list[Any]) -> str:
    """The plain-text rendering of parsed Markdown (markdown-it tokens)."""
    return "\n\n".join(_blocks(SyntaxTreeNode(tokens).children)).strip()


def _blocks(nodes: list[SyntaxTreeNode]) -> list[str]:
    rendered = (_block(node) for node in nodes)
    return [block for block in rendered if block]


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in {"paragraph", "heading"}:
        return "".join(_inline(child) for child in node.children[0].children)
    if kind in {"bullet_list", "ordered_list"}:
        return _list(node)
    if kind == "blockquote":
        inner = "\n\n".join(_blocks(node.children))
        return "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
    if kind in {"code_block", "fence", "html_block"}:
        return node.content.rstrip("\n")
    if kind == "hr":
        return "----"
    return "\n\n".join(_blocks(node.children))


def _list(node: SyntaxTreeNode) -> str:
    # A tight list (its paragraphs hidden, as in the HTML) keeps one item a line.
    tight = any(child.hidden for item in node.children for child in item.children)
    between = "\n" if tight else "\n\n"
    start = int(str(node.attrs.get("start", 1)))
    items = []
    for number, item in enumerate(node.children, start):
        marker = f"{number}. " if node.type == "ordered_list" else "- "
        first, *rest = between.join(_blocks(item.children)).splitlines() or [""]
        hang = " " * len(marker)  # what follows the first line lines up under its text
        items.append("\n".join([marker + first, *(hang + line if line else "" for line in rest)]))
    return between.join(items)


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in {"softbreak", "hardbreak"}:
        return "\n"  # templates put a line break where they mean one
    if kind in {"text", "code_inline", "html_inline"}:
        return node.content
    inner = "".join(_inline(child) for child in node.children)
    if kind == "link":
        href = str(node.attrs.get("href", ""))
        if href in {inner, f"mailto:{inner}", f"tel:{inner}"}:
            return inner  # an autolink: the address once is enough
        return f"{inner} ({href})"
    return inner  # strong, em, image (its alt text): the words without the markup


class _CompiledCache:
    """Compiled templates by source text: compiling costs ~60x a render (stack-notes)."""

    def __init__(self, environment: BudgetedSandbox, size: int = 512) -> None:
        self._environment = environment
        self._size = size
        self._templates: OrderedDict[str, Template] = OrderedDict()

    def get(self, source: str, name: str) -> Template:
        digest = hashlib.sha256(source.encode()).hexdigest()
        template = self._templates.get(digest)
        if template is None:
            try:
                template = self._environment.from_string(source)
            except TemplateSyntaxError as error:
                raise RenderError(f"{name}: line {error.lineno}: {error.message}") from None
            except TemplateError as error:  # e.g. an unknown filter, found while compiling
                line = getattr(error, "lineno", None)
                where = f"line {line}: " if line else ""
                raise RenderError(f"{name}: {where}{error}") from None
            self._templates[digest] = template
            if len(self._templates) > self._size:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(digest)
        return template


def _environment(*, autoescape: bool, markdown: bool = False) -> BudgetedSandbox:
    return BudgetedSandbox(
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=escape_markdown if markdown else None,
    )


def _run(template: Template, name: str, variables: dict[str, Any]) -> str:
    """One template of a message, inside the message's budget (see Renderer._budget)."""
    try:
        render_budget.new_output()
        return template.render(variables)
    except RenderBudgetExceededError as error:
        line = render_budget.line_of(error, template.filename or "<template>")
        where = f"line {line}: " if line else ""
        raise RenderError(f"{name}: {where}{BUDGET_EXCEEDED}: {error}") from None
    except SecurityError as error:
        raise RenderError(f"{name}: not allowed in a template: {error}") from None
    except UndefinedError as error:
        raise RenderError(f"{name}: undefined variable: {error.message}") from None
    except TemplateError as error:
        raise RenderError(f"{name}: {error}") from None
    except Exception as error:
        raise RenderError(f"{name}: {type(error).__name__}: {error}") from None


def split_front_matter(source: str, name: str) -> tuple[dict[str, Any], str, int]:
    """Split an e-mail template into its front matter, its body and the body's first line."""
    fields, body, body_line = _split_front_matter(source, name)
    return dict(fields), body, body_line


# Every e-mail of a template splits the same text: parsing its YAML each time was 3 % of a
# send worker's CPU (py-spy, docs/benchmarks.md). A source that does not split raises, and
# lru_cache keeps no exception, so a broken template is reported every time.
@functools.lru_cache(maxsize=256)
def _split_front_matter(source: str, name: str) -> tuple[dict[str, Any], str, int]:
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
        raise RenderError(f"{name}: line 1: start with front matter ('---', subject: ..., '---')")
    for index in range(1, len(lines)):
        if lines[index].strip() == FRONT_MATTER_FENCE:
            break
    else:
        raise RenderError(f"{name}: front matter is not closed with a '---' line")
    try:
        fields = yaml.safe_load("".join(lines[1:index])) or {}
    except yaml.YAMLError as error:
        raise RenderError(f"{name}: front matter is not valid YAML: {error}") from None
    if not isinstance(fields, dict):
        raise RenderError(f"{name}: front matter must be 'key: value' lines")
    unknown = set(fields) - {"subject", "preheader"}
    if unknown:
        raise RenderError(f"{name}: unknown front matter field(s): {', '.join(sorted(unknown))}")
    if not isinstance(fields.get("subject"), str) or not fields["subject"].strip():
        raise RenderError(f"{name}: front matter needs a non-empty subject")
    if not isinstance(fields.get("preheader", ""), str):
        raise RenderError(f"{name}: preheader must be text")
    return fields, "".join(lines[index + 1 :]), index + 2


class Renderer:
    """Renders SMS bodies and e-mails (Markdown body inside the HTML and text layouts)."""

    def __init__(
        self, *, email_budget: RenderBudget = EMAIL_BUDGET, sms_budget: RenderBudget = SMS_BUDGET
    ) -> None:
        self.email_budget = email_budget
        self.sms_budget = sms_budget
        self._text = _CompiledCache(_environment(autoescape=False))
        self._html = _CompiledCache(_environment(autoescape=True))
        self._markdown_body = _CompiledCache(_environment(autoescape=False, markdown=True))
        # Raw HTML in Markdown stays text: a lead's name can never inject markup.
        self._markdown = MarkdownIt("commonmark", {"html": False})

    def render_sms(self, source: str, context: RenderContext, *, name: str) -> str:
        template = self._text.get(source, name)
        with render_budget.spending(self.sms_budget):
            body = _run(template, name, context.variables())
        # Collapse the blank lines a template's {% if %} blocks leave; texts cost per character.
        return "\n".join(line.rstrip() for line in body.strip().splitlines())

    def render_email(
        self, source: str, layouts: EmailLayouts, context: RenderContext, *, name: str
    ) -> RenderedEmail:
        # One deadline for the whole message: its parts, both bodies and the Markdown.
        with render_budget.spending(self.email_budget):
            return self._render_email(source, layouts, context, name=name)

    def _render_email(
        self, source: str, layouts: EmailLayouts, context: RenderContext, *, name: str
    ) -> RenderedEmail:
        front, body, body_line = split_front_matter(source, name)
        variables = context.variables()
        subject = _run(self._text.get(front["subject"], f"{name} subject"), name, variables)
        subject = " ".join(subject.split())  # a header is one line
        if not subject:
            raise RenderError(f"{name}: the subject renders empty")
        preheader = _run(
            self._text.get(front.get("preheader", ""), f"{name} preheader"), name, variables
        )
        # Pad with newlines so Jinja's line numbers are the file's line numbers.
        padded = "\n" * (body_line - 1) + body
        # The HTML part: printed values escaped for Markdown, except the clinic's and links.
        markdown = _run(
            self._markdown_body.get(padded, name),
            name,
            {**variables, "clinic": _trusted(context.clinic), "links": _trusted(context.links)},
        ).strip()
        # Parsed once for both parts: the HTML, and the plain text a text-only reader sees.
        tokens = self._markdown.parse(markdown)
        body_html = self._markdown.renderer.render(tokens, self._markdown.options, {})
        page = {**variables, "subject": subject, "preheader": " ".join(preheader.split())}
        html = _run(
            self._html.get(layouts.html, "layouts/email.html.j2"),
            "layouts/email.html.j2",
            {**page, "body_html": Markup(body_html)},  # noqa: S704 - markdown-it escaped it
        )
        text = _run(
            self._text.get(layouts.text, "layouts/email.txt.j2"),
            "layouts/email.txt.j2",
            {**page, "body_text": plain_text(tokens)},
        )
        return RenderedEmail(
            subject=subject, preheader=page["preheader"], text=text.strip() + "\n", html=html
        )
