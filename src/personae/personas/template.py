"""Persona prompt templates: Jinja2 in a sandbox, bounded in time, output and memory.

Templates are persona data written by users, not code we trust, so they run in an
immutable sandbox (no unsafe attributes, no mutation of lists or dicts) that is also
bounded: a render stops after ``TemplateLimits.seconds``, its output after
``TemplateLimits.max_output`` characters, and no value it builds may outgrow the
output bound (see :mod:`personae.personas.template_bounds`). Loops, ``~``
concatenation and template text are rewritten after parsing so they pass through
those bounds, and constant expressions are never evaluated while compiling.
This module knows nothing of personas, so the schema can check a template compiles
without importing the prompt builder.
"""

from __future__ import annotations

import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache, update_wrapper
from typing import Any, cast

import jinja2
from jinja2 import nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

from personae.personas.template_bounds import (
    MAX_OUTPUT_CHARS,
    MAX_POWER_BITS,
    MAX_RENDER_SECONDS,
    Budget,
    TemplateBoundError,
    active,
    bounded_range,
    budget,
    check_count,
    check_printf,
    check_text,
    power_bits,
    product_size,
    spec_widths,
    sum_size,
    text_size,
)
from personae.personas.template_filters import (
    CONCAT,
    LITERAL,
    LOOP,
    bounded_filters,
    bounded_lipsum,
    presize_call,
)

MAX_TEMPLATE_CHARS = MAX_OUTPUT_CHARS  # longest template text accepted


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """How long one render may take and how much text it may produce."""

    seconds: float = MAX_RENDER_SECONDS
    max_output: int = MAX_OUTPUT_CHARS


DEFAULT_LIMITS = TemplateLimits()


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Size an arithmetic result before it is computed."""
    if operator == "**" and power_bits(left, right) > MAX_POWER_BITS:
        raise TemplateBoundError(f"the result of '**' would be larger than {MAX_POWER_BITS} bits")
    if operator == "*":
        size, unit = product_size(left, right)
        if unit == "bits" and size > MAX_POWER_BITS:
            raise TemplateBoundError(
                f"the result of '*' would be larger than {MAX_POWER_BITS} bits")
        if unit == "items":
            active().check_size(size, "the result of '*'")
    elif operator == "+":
        active().check_size(sum_size(left, right), "the result of '+'")
    elif operator == "%" and isinstance(left, str | bytes):
        check_printf(left, right)


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` for templates: widths, each field and the total within the bound."""

    def __init__(self, env: jinja2.Environment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._produced = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            check_text(value, "a formatted field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        current = active()
        widths = spec_widths(format_spec)
        check_count(widths, "a formatting width")
        current.check_size(self._produced + widths + text_size(value, current.max_chars),
                           "the formatted text")
        text = super().format_field(value, format_spec)
        self._produced += len(text)
        current.check_size(self._produced, "the formatted text")
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with every operation that can build a value sized and timed."""

    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current = active()
        current.tick()
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        current.built(result)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        current = active()
        current.tick()
        args = presize_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        current.built(result)
        return result

    def getitem(self, obj: Any, argument: Any) -> Any:
        result = super().getitem(obj, argument)
        if isinstance(argument, slice):  # a slice is a copy
            active().built(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` through the bounded formatter."""
        if not (isinstance(value, types.MethodType | types.BuiltinMethodType)
                and value.__name__ in ("format", "format_map")
                and isinstance(value.__self__, str)):
            return None
        text: str = value.__self__
        is_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            positional, named = args, kwargs
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                positional, named = (), args[0]
            formatter = (_BoundedEscapeFormatter(self, escape=text.escape)
                         if isinstance(text, Markup) else _BoundedFormatter(self))
            return type(text)(formatter.vformat(text, positional, named))

        return update_wrapper(bounded_format, value)


@pass_context
def _finalize(_context: Context, value: Any) -> Any:
    """Every ``{{ ... }}`` output, sized before it is turned into text."""
    current = active()
    current.tick()
    current.spend(check_text(value, "an output value"))
    return value


def _through(name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Bounded(NodeTransformer):
    """Rewrites a parsed template so loops, ``~`` and template text pass the bounds."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _through(LOOP, cast(nodes.Expr, node.iter))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _through(CONCAT, nodes.List(node.nodes, lineno=node.lineno))

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        return _through(LITERAL, nodes.Const(node.data, lineno=node.lineno))


def _environment() -> _PromptSandbox:
    env = _PromptSandbox(undefined=jinja2.StrictUndefined, autoescape=False,
                         keep_trailing_newline=False, optimized=False, finalize=_finalize)
    env.filters = bounded_filters(env.filters)
    env.globals.update(range=bounded_range, lipsum=bounded_lipsum)
    return env


_ENV = _environment()
_TEMPLATE_FILE = "<template>"
_RUNTIME_ERRORS = (
    jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError,
    AttributeError, RecursionError,
)


@lru_cache(maxsize=256)
def compile_template(text: str) -> jinja2.Template:
    """Compile a persona's prompt template once; syntax errors name their line."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"longer than {MAX_TEMPLATE_CHARS:,} characters")
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: {exc.message or 'invalid syntax'}") from None
    tree = _Bounded().visit(tree)
    tree.set_environment(_ENV)
    return _ENV.from_string(tree)


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error came from, if the traceback shows it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == _TEMPLATE_FILE]
    return frames[-1].lineno if frames else None


def _collect(chunks: Iterator[str], current: Budget) -> str:
    """The output, stopped at the output bound or the deadline."""
    parts: list[str] = []
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            current.check_size(size, "the output")
            current.tick()
            parts.append(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return "".join(parts)


def render_template(text: str, context: Mapping[str, Any],
                    limits: TemplateLimits = DEFAULT_LIMITS) -> str:
    """Render a template within ``limits``; any failure is a ValueError naming the
    template line and, when a bound was broken, the bound."""
    template = compile_template(text)
    try:
        with budget(limits.seconds, limits.max_output) as current:
            return _collect(template.generate(context), current)
    except _RUNTIME_ERRORS as exc:
        line = _template_line(exc)
        where = f"line {line}: " if line else ""
        raise ValueError(f"prompt template failed: {where}{exc}") from None
