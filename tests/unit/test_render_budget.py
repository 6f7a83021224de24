"""The render budget: a runaway template stops during its render, within a bound, with a reason.

Each case here froze or exhausted a process before the budget (issue 10, finding 4). The bound
asserted is generous (it proves "did not hang"), never a measured duration.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nurture.content.render_budget import EMAIL_BUDGET, RenderBudget
from nurture.content.rendering import Renderer, RenderError
from tests.unit.test_rendering import LAYOUTS, context

DID_NOT_HANG = 10.0  # seconds
BIG = "{% set s = 'a' * 60000 %}"  # under the size limit: the operation on it is the problem

RUNAWAYS = {
    "a huge power, compared": "{{ (10**(10**7)) > 1 }}",
    "a huge power": "{{ 10**(10**7) }}",
    "a huge repetition": "{{ 'a'*10**8 }}",
    "a bigger repetition": "{{ 'a'*10**9 }}",
    "a repeated list": BIG + "{{ [s] * 6 }}",
    "a huge product": "{{ (2**4000) * (2**4000) }}",
    "nested loops": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    ),
    "exponential macro recursion": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}"
    ),
    "namespace doubling with ~": (
        "{% set ns = namespace(s='a') %}{% for i in range(100) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "namespace doubling with +": (
        "{% set ns = namespace(s='a') %}{% for i in range(100) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "a huge center filter": "{{ 'a'|center(10**9) }}",
    "a huge center method": "{{ 'a'.center(1000000000) }}",
    "ljust, zfill": "{{ 'a'.ljust(10**9) }}{{ '1'.zfill(10**9) }}",
    "expandtabs": "{% set t = '\t' * 60000 %}{{ t.expandtabs(60000) }}",
    "to_bytes": "{{ (1).to_bytes(10**9, 'big') }}",
    "a huge replace filter": BIG + "{{ s|replace('a', 'aaaaa') }}",
    "a huge replace method": BIG + "{{ s.replace('a', 'bbbb') }}",
    "a huge join filter": BIG + "{{ range(100000)|join(s) }}",
    "a huge join method": BIG + "{{ s.join(range(100000)|map('string')) }}",
    "a generator of big values": BIG + "{{ range(100000)|map('center', 60000)|list|length }}",
    "indent by a number": "{% set n = '\\n' * 60000 %}{{ n|indent(1000) }}",
    "indent by a string": "{% set n = '\\n' * 60000 %}{{ n|indent('x' * 1000) }}",
    "wordwrap": BIG + "{{ s|wordwrap(1, wrapstring='x' * 1000) }}",
    "sum of lists": "{{ [[1]] * 100000|sum(start=[]) }}",
    "% width": "{{ '%999999999s' % 'a' }}",
    "% repeats": BIG + "{{ '%(a)s%(a)s%(a)s%(a)s%(a)s' % {'a': s} }}",
    "format filter width": "{{ '%999999999d'|format(1) }}",
    "format filter repeats": BIG + "{{ '%s%s%s%s%s%s'|format(s, s, s, s, s, s) }}",
    "str.format width": "{{ '{:>999999999}'.format('a') }}",
    "str.format nested width": "{{ '{0:{1}}'.format('a', 999999999) }}",
    "str.format repeats": BIG + "{{ '{0}{0}{0}{0}{0}{0}'.format(s) }}",
    "translate": BIG + "{{ 'aaaaaaaaaa'.translate({97: s}) }}",
    "~ of big parts": BIG + "{{ s ~ s ~ s ~ s ~ s ~ s }}",
    "a heavy list literal": BIG + "{{ [s, s, s, s, s, s] }}",
    "a heavy dict literal": BIG + "{{ {'a': s, 'b': s, 'c': s, 'd': s, 'e': s, 'f': s} }}",
    "shared structure, printed as JSON": (
        "{% set a = ['xxxxxxxxxx'] * 16 %}{% set b = [a, a, a, a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b, b, b] %}"
        "{% set d = [c, c, c, c, c, c, c, c, c, c, c, c] %}{{ d|tojson }}"
    ),
    "namespaces hiding weight": BIG + "{% set ns = namespace(a=s, b=s) %}{{ [ns, ns, ns] }}",
    "output in a loop": "{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}",
    "output into a set block": (
        "{% set x %}{% for i in range(99999) %}{{ 'x' * 100 }}{% endfor %}{% endset %}"
        "{{ x|length }}"
    ),
}


def email(body: str) -> str:
    return f"---\nsubject: Hello\n---\n{body}"


@pytest.mark.parametrize("source", RUNAWAYS.values(), ids=RUNAWAYS.keys())
def test_a_runaway_email_stops_with_the_reason(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="render budget exceeded") as refused:
        Renderer().render_email(email(source), LAYOUTS, context(), name="email/runaway")
    assert time.monotonic() - started < DID_NOT_HANG
    assert str(refused.value).startswith("email/runaway: line 4: render budget exceeded: ")


@pytest.mark.parametrize(
    "source", [RUNAWAYS["a bigger repetition"], RUNAWAYS["nested loops"]], ids=["size", "time"]
)
def test_a_runaway_text_stops_too(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="render budget exceeded"):
        Renderer().render_sms(source, context(), name="sms/runaway")
    assert time.monotonic() - started < DID_NOT_HANG


def test_the_deadline_is_a_setting_and_names_itself() -> None:
    quick = Renderer(email_budget=RenderBudget(seconds=0.2, max_chars=EMAIL_BUDGET.max_chars))
    with pytest.raises(RenderError, match=r"took longer than 0\.2 s"):
        quick.render_email(email(RUNAWAYS["nested loops"]), LAYOUTS, context(), name="e")


def test_concurrent_renders_keep_their_own_budgets() -> None:
    """A runaway in one thread never spends the budget of a normal render in another."""
    renderer = Renderer()
    normal = email("Hi {{ lead.first_name }}, [book]({{ links.book }})")
    with ThreadPoolExecutor(4) as pool:
        runaway = pool.submit(
            renderer.render_email, email(RUNAWAYS["nested loops"]), LAYOUTS, context(), name="r"
        )
        done = [
            pool.submit(renderer.render_email, normal, LAYOUTS, context(), name="n")
            for _ in range(20)
        ]
        assert all("Hi Ana" in job.result(DID_NOT_HANG).text for job in done)
        with pytest.raises(RenderError, match="render budget exceeded"):
            runaway.result(DID_NOT_HANG)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 2**4000 > 1 }}", "True"),
        ("{{ '%05.1f'|format(3.14159) }}", "003.1"),
        ("[{{ '{:>6}'.format('ab') }}]", "[    ab]"),
        ("[{{ 'x'|center(5) }}]", "[  x  ]"),
        ("{{ [1, 2, 3]|sum }}", "6"),
        ("{{ 'a,b'.split(',')|join('-') }}", "a-b"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ ('ab' * 3)|replace('b', 'c') }}", "acacac"),
        ("{{ range(5)|map('string')|join(', ') }}", "0, 1, 2, 3, 4"),
    ],
)
def test_ordinary_templates_render_as_before_under_a_tight_budget(
    source: str, expected: str
) -> None:
    tight = Renderer(sms_budget=RenderBudget(seconds=1.0, max_chars=2000))
    assert tight.render_sms(source, context(), name="t") == expected


def test_lipsum_is_not_offered() -> None:
    # lipsum(n) writes n paragraphs in one uninterruptible call.
    with pytest.raises(RenderError, match=r"undefined variable.*lipsum"):
        Renderer().render_sms("{{ lipsum(100000) }}", context(), name="t")


def test_every_celery_task_has_soft_and_hard_time_limits() -> None:
    from workers.app import app
    from workers.tasks import dispatch_due  # noqa: F401 - registers the tasks

    ours = [task for name, task in app.tasks.items() if name.startswith("nurture.")]
    assert {task.name for task in ours} >= {
        "nurture.send_emails",
        "nurture.send_texts",
        "nurture.send_email",
        "nurture.send_sms",
        "nurture.dispatch_due",
        "nurture.reap_stale",
    }
    for task in ours:
        assert task.soft_time_limit and task.time_limit, task.name
        assert 0 < task.soft_time_limit < task.time_limit, task.name
    assert (app.tasks["nurture.send_sms"].time_limit or 0) <= 120
    # A batch may take longer than one send, never as long as the reaper waits for a `sending`
    # row (stale_sending_after, 600 s): a killed batch becomes `unknown`, never a resend.
    assert (app.tasks["nurture.send_texts"].time_limit or 0) <= 300
