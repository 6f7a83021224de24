"""A budget for every render: a deadline, an output size, and no value heavier than that size.

A template is marketing's code, and one message's render must never freeze a web process or a
worker. Checking after the render is too late, so the budget is enforced *during* it:

- Time: the generated code ticks on every for-loop iteration, and the sandbox ticks on every
  call (macros and recursion included), operator, filter and output chunk; a tick past the
  deadline stops the render.
- Size: every output chunk is counted as it is produced (into the message or a macro's or
  ``{% set %}`` block's buffer), and stops the render past the limit.
- Weight: one C-level step (``'a' * 10**9``, ``10 ** 10**7``, ``s.center(10**9)``) cannot be
  interrupted, so such steps are refused *before* they run when their predicted result is too
  big. The invariant is that no value a template builds weighs more than the size limit (its
  characters and elements, nested and shared parts counted every time), so printing, comparing
  or formatting any value stays cheap. Literals, operators, ``~``, calls and filters are all
  weighed; a few filters and ``str`` methods that can dwarf their input are predicted first.

The state lives in a ContextVar, so concurrent renders in a thread pool never share a budget.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg


@dataclass(frozen=True)
class RenderBudget:
    seconds: float  # for one message: all its parts and the Markdown
    max_chars: int  # output characters per template, and the heaviest value a template may build
    max_int_bits: int = 4096  # about 1,200 decimal digits: ample for any arithmetic in a message
    work_factor: int = 32  # all values built in one message may weigh this many times max_chars


# The defaults, in one place. A real e-mail is a few KiB and renders in a millisecond.
EMAIL_BUDGET = RenderBudget(seconds=2.0, max_chars=256 * 1024)
SMS_BUDGET = RenderBudget(seconds=1.0, max_chars=64 * 1024)


class RenderBudgetExceededError(Exception):
    """The render went over its budget; the text says what (time, size or the operation)."""


class _Spend:
    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget.seconds
        self.produced = 0  # output characters of the template rendering now
        self.built = 0  # weight of every value built so far in this message


_current: ContextVar[_Spend | None] = ContextVar("render_budget", default=None)


@contextmanager
def spending(budget: RenderBudget) -> Iterator[None]:
    """Everything rendered inside shares this budget (a nested call keeps the outer one)."""
    if _current.get() is not None:
        yield
        return
    token = _current.set(_Spend(budget))
    try:
        yield
    finally:
        _current.reset(token)


def new_output() -> None:
    """Start counting output for the next template of the same message."""
    _spend().produced = 0


def _spend() -> _Spend:
    spend = _current.get()
    if spend is None:
        # Also what stops Jinja folding a filter call at compile time, outside any budget.
        raise RenderBudgetExceededError("a template ran outside a render budget")
    return spend


def tick() -> _Spend:
    spend = _spend()
    if time.monotonic() > spend.deadline:
        raise RenderBudgetExceededError(f"took longer than {spend.budget.seconds:g} s")
    return spend


def weight(value: Any, cap: int) -> int:
    """How much a value stands for when printed: characters of its strings, one per element,
    nested and shared parts counted every time. Counting stops once it passes ``cap``."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += 1 + len(item)
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 1 + len(item)
            if total <= cap:
                stack.extend(item)
        elif isinstance(item, Namespace):  # its repr prints every attribute
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            total += 1
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        else:
            total += 1
        if total > cap:
            return total
    return total


def _refuse(what: str) -> RenderBudgetExceededError:
    return RenderBudgetExceededError(what)


def built(value: Any, what: str) -> Any:
    """Admit a value a template built: refused if too heavy, and counted towards the work."""
    spend = tick()
    limit = spend.budget.max_chars
    if isinstance(value, int) and value.bit_length() > spend.budget.max_int_bits:
        raise _refuse(f"{what} makes a number over {spend.budget.max_int_bits} bits")
    heft = weight(value, limit)
    if heft > limit:
        raise _refuse(f"{what} makes a value over {limit} characters")
    spend.built += heft
    if spend.built > limit * spend.budget.work_factor:
        raise _refuse(f"builds more than {limit * spend.budget.work_factor} characters of values")
    return value


def _predicted(size: int, what: str) -> None:
    limit = _spend().budget.max_chars
    if size > limit:
        raise _refuse(f"{what} would make over {limit} characters")


def emit(chunk: str) -> str:
    """Count one output chunk (of the message or of a buffer inside it)."""
    spend = tick()
    spend.produced += len(chunk)
    if spend.produced > spend.budget.max_chars:
        raise _refuse(f"output over {spend.budget.max_chars} characters")
    return chunk


def concatenated(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``~`` operator: weigh the parts before they are joined."""
    spend = tick()
    limit = spend.budget.max_chars
    _predicted(sum(weight(part, limit) for part in parts), "~")
    return parts


# Operators -----------------------------------------------------------------------------------

SEQUENCES = (str, bytes, list, tuple)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would be too big, before it runs."""
    spend = tick()
    limit, bits = spend.budget.max_chars, spend.budget.max_int_bits
    if isinstance(left, int) and isinstance(right, int):
        if max(abs(left).bit_length(), abs(right).bit_length()) > bits:
            raise _refuse(f"{operator} on a number over {bits} bits")
        growth = (abs(left).bit_length() - 1) * right if abs(left) > 1 else 0
        if operator == "**" and growth > bits:
            raise _refuse(f"** would make a number over {bits} bits")
        if operator == "*" and abs(left).bit_length() + abs(right).bit_length() > bits:
            raise _refuse(f"* would make a number over {bits} bits")
        return
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, SEQUENCES) and isinstance(times, int):
                _predicted(weight(sequence, limit) * max(times, 0), "*")
    elif operator == "+" and isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES):
        _predicted(weight(left, limit) + weight(right, limit), "+")
    elif operator == "%" and isinstance(left, str):
        values = right if isinstance(right, (tuple, Mapping)) else (right,)
        check_percent_format(left, values)


# printf-style: %[(name)][flags][width][.precision]type
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)")


def _heaviest(values: Iterable[Any], limit: int) -> int:
    return max((weight(v, limit) for v in values), default=0)


def _largest_int(values: Iterable[Any]) -> int:
    return max((abs(v) for v in values if isinstance(v, int)), default=0)


def check_percent_format(template: str, values: tuple[Any, ...] | Mapping[str, Any]) -> None:
    """``'%5s' % x``: the widths plus each field at most as heavy as the heaviest value."""
    limit = tick().budget.max_chars
    items = list(values.values() if isinstance(values, Mapping) else values)
    heaviest, star = _heaviest(items, limit), _largest_int(items)
    size = len(template)
    for match in _PERCENT.finditer(template):
        width, precision = (star if n == "*" else int(n or 0) for n in match.group(1, 2))
        _predicted(max(width, precision), "a % width")
        size += heaviest + width + precision
    _predicted(size, "%")


def check_str_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """``'{:>9}'.format(x)``: the same rule as ``%`` for ``str.format`` and ``format_map``."""
    limit = tick().budget.max_chars
    items = [*args, *kwargs.values()]
    heaviest, nested = _heaviest(items, limit), _largest_int(items)
    size = len(template)
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        widths = [int(n) for n in re.findall(r"\d+", spec or "")]
        if spec and "{" in spec:
            widths.append(nested)
        width = max(widths, default=0)
        _predicted(width, "a format width")
        size += heaviest + width
    _predicted(size, "format")


# Calls and filters ---------------------------------------------------------------------------


def _size_arguments(args: Iterable[Any], where: str) -> None:
    """The one general rule: no size-like number over the limit goes into a call."""
    limit = _spend().budget.max_chars
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
            raise _refuse(f"{where} with {value}, over {limit}")


def _joined(items: Iterable[Any], separator: Any) -> list[Any]:
    """Materialise what is being joined, weighing as it goes (it may be a generator)."""
    limit = tick().budget.max_chars
    sep = weight(separator, limit) if separator is not None else 0
    taken, size = [], 0
    for item in items:
        size += weight(item, limit) + sep
        _predicted(size, "join")
        taken.append(item)
    return taken


def _replaced(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, (str, bytes)) and isinstance(old, type(text)):
        found: int = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        _predicted(len(text) + found * weight(new, _spend().budget.max_chars), "replace")


def _method_call(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Predict the builtin ``str``/``bytes`` methods whose output can dwarf their input."""
    owner: Any = method.__self__
    name: str = method.__name__
    _size_arguments([*args, *kwargs.values()], f"{name}()")
    if not isinstance(owner, (str, bytes)):
        return args
    limit = _spend().budget.max_chars
    if name == "join" and args:
        return (_joined(args[0], owner), *args[1:])
    if name == "replace" and len(args) >= 2:
        _replaced(owner, *args[:3])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        _predicted(len(owner) * max(1, _heaviest(args[0].values(), limit)), "translate")
    elif name == "expandtabs":
        tabsize = (args or (kwargs.get("tabsize", 8),))[0]
        tab: Any = "\t" if isinstance(owner, str) else b"\t"
        if isinstance(tabsize, int):
            _predicted(
                len(owner) + owner.count(tab) * tabsize,
                "expandtabs",
            )
    return args


def _text_lines(text: Any) -> int:
    return str(text).count("\n") + 1


def _predict_filter(name: str, bound: inspect.BoundArguments) -> None:
    """The filters whose output can dwarf their input; the rest stay within a small factor."""
    a = bound.arguments
    limit = _spend().budget.max_chars
    if name == "join":
        a["value"] = _joined(a["value"], a.get("d", ""))
    elif name == "replace":
        _replaced(str(a["s"]), a["old"], a["new"], a.get("count") or -1)
    elif name == "indent":
        width = a.get("width", 4)
        per_line = width if isinstance(width, int) else weight(width, limit)
        _predicted(len(str(a["s"])) + _text_lines(a["s"]) * per_line, "indent")
    elif name == "wordwrap":
        wrap = a.get("wrapstring") or "\n"
        width = max(a.get("width", 79) if isinstance(a.get("width"), int) else 1, 1)
        text = str(a["s"])
        _predicted(len(text) + (len(text) // width + 1) * weight(wrap, limit), "wordwrap")
    elif name == "format":
        values = a.get("kwargs") or a.get("args") or ()
        check_percent_format(str(a["value"]), values)
    elif name == "sum" and not isinstance(a.get("start", 0), (int, float)):
        raise _refuse("sum adds numbers only")


def guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(function)
    skip = 0 if _PassArg.from_obj(function) is None else 1  # context/environment first
    # Jinja's async-aware filters take an eval context their signature does not show.
    first = next(iter(signature.parameters), "")
    hidden = skip if first not in {"context", "eval_ctx", "environment"} else 0

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        _size_arguments([*args[skip + 1 :], *kwargs.values()], f"|{name}")
        bound = signature.bind(*args[hidden:], **kwargs)
        _predict_filter(name, bound)
        result = function(*args[:hidden], *bound.args, **bound.kwargs)
        return built(result, f"|{name}")

    return guarded


# The environment and its code generator ------------------------------------------------------


class BudgetedCodeGenerator(CodeGenerator):
    """Generated template code that ticks in loops, counts output and weighs literals and ``~``."""

    def blockvisit(self, nodes: Iterable[nodes.Node], frame: Frame) -> None:
        if frame.loop_frame:
            self.writeline("environment.budget_tick()")
        super().blockvisit(nodes, frame)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.budget_emit({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.budget_emit(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        # As the parent writes it, with the parts weighed before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.budget_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:  # noqa: N802
        if node.ctx != "load":  # a loop's or a set's target, not a value
            super().visit_Tuple(node, frame)
            return
        self.write("environment.budget_literal(")
        super().visit_Tuple(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:  # noqa: N802
        self.write("environment.budget_literal(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:  # noqa: N802
        self.write("environment.budget_literal(")
        super().visit_Dict(node, frame)
        self.write(")")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, held to the render budget of the message being rendered."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # lipsum(n) writes n paragraphs in one Python call that nothing could interrupt.
        self.globals.pop("lipsum", None)
        self.filters = {name: guarded_filter(name, f) for name, f in self.filters.items()}

    @staticmethod
    def budget_tick() -> None:
        tick()

    @staticmethod
    def budget_emit(chunk: str) -> str:
        return emit(chunk)

    @staticmethod
    def budget_literal(value: Any) -> Any:
        return built(value, "a literal")

    @staticmethod
    def budget_concat(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        return concatenated(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return built(super().call_binop(context, operator, left, right), operator)

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        tick()
        return super().call_unop(context, operator, arg)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        tick()
        if isinstance(__obj, types.BuiltinMethodType) and not isinstance(__obj.__self__, type):
            args = _method_call(__obj, args, kwargs)
        name = getattr(__obj, "__name__", "a call")
        return built(super().call(__context, __obj, *args, **kwargs), f"{name}()")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        sandboxed = super().wrap_str_format(value)
        if sandboxed is None:
            return None
        template = value.__self__
        is_map = value.__name__ == "format_map"

        @wraps(sandboxed)
        def checked(*args: Any, **kwargs: Any) -> str:
            values = dict(args[0]) if is_map and args and isinstance(args[0], Mapping) else kwargs
            check_str_format(str(template), () if is_map else args, values)
            return sandboxed(*args, **kwargs)

        return checked


def line_of(error: BaseException, template_name: str) -> int | None:
    """The template line a render stopped at, from the traceback Jinja rewrote."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == template_name:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


__all__ = [
    "EMAIL_BUDGET",
    "SMS_BUDGET",
    "BudgetedSandbox",
    "RenderBudget",
    "RenderBudgetExceededError",
    "line_of",
    "new_output",
    "spending",
    "weight",
]
