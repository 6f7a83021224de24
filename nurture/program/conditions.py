"""Step conditions (``when:``): sandboxed Jinja2 expressions over the lead, checked at send time."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


class ConditionError(ValueError):
    pass


@lru_cache(maxsize=256)
def compile_condition(expression: str) -> Callable[..., Any]:
    """Compile once; raise ConditionError for an expression that is not valid Jinja2."""
    try:
        return _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
    except TemplateError as error:
        raise ConditionError(f"bad condition {expression!r}: {error}") from None


def evaluate(expression: str, variables: dict[str, Any]) -> bool:
    """True or False; ConditionError when it cannot be evaluated (an unknown name, say)."""
    try:
        return bool(compile_condition(expression)(**variables))
    except ConditionError:
        raise
    except Exception as error:  # expressions are marketing's code: any failure is theirs
        raise ConditionError(f"condition {expression!r} failed: {error}") from None
