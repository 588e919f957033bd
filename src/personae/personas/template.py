"""Persona prompt templates: Jinja2 in a sandbox, bounded in what they may compute.

Templates are persona data written by users, not code we trust, so they run in an
immutable sandbox that also refuses arithmetic big enough to exhaust memory or CPU.
This module knows nothing of personas, so the schema can check a template compiles
without importing the prompt builder.
"""

from __future__ import annotations

import traceback
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_MAX_REPEAT = 100_000  # longest string/list a template may build with "*"
_MAX_BITS = 4096  # largest integer a template may build with "**"


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """Sandbox that also refuses arithmetic big enough to exhaust memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str,
                   left: Any, right: Any) -> Any:
        if operator == "**" and _power_bits(left, right) > _MAX_BITS:
            raise SecurityError("the result of '**' is too large")
        if operator == "*" and _repeat_size(left, right) > _MAX_REPEAT:
            raise SecurityError("the result of '*' is too long")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _power_bits(base: Any, exponent: Any) -> int:
    """Rough size in bits of ``base ** exponent`` for integers; 0 otherwise."""
    if _is_int(base) and _is_int(exponent):
        return int(abs(exponent) * max(base.bit_length(), 1))
    return 0


def _repeat_size(left: Any, right: Any) -> int:
    """Length of ``sequence * count`` (either order); 0 when not a repetition."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and _is_int(count):
            return len(sequence) * int(count)
    return 0


_ENV = _PromptSandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)
_TEMPLATE_FILE = "<template>"
_RUNTIME_ERRORS = (
    jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError,
    AttributeError, RecursionError,
)


@lru_cache(maxsize=256)
def compile_template(text: str) -> jinja2.Template:
    """Compile a persona's prompt template once; syntax errors name their line."""
    try:
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: {exc.message or 'invalid syntax'}") from None


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error came from, if the traceback shows it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == _TEMPLATE_FILE]
    return frames[-1].lineno if frames else None


def render_template(text: str, **context: Any) -> str:
    """Render a template; any failure is a ValueError naming the template line."""
    template = compile_template(text)
    try:
        return template.render(**context)
    except _RUNTIME_ERRORS as exc:
        line = _template_line(exc)
        where = f"line {line}: " if line else ""
        raise ValueError(f"prompt template failed: {where}{exc}") from None
