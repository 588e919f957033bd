"""Jinja filters, globals and string methods, each sized before it runs.

Every built-in filter is wrapped so it checks the render's deadline and counts what it
returns against the budget of :mod:`personae.personas.template_bounds`; the filters
and methods whose output can be far larger than their input (padding widths, joins,
replacements, batches, formatting) are also sized before they run. The wrappers take
the render context, which also keeps Jinja from folding them at compile time: a
constant expression such as ``'%0999999999d'|format(1)`` is not run while compiling.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any

from jinja2 import pass_context
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.utils import generate_lorem_ipsum

from personae.personas.template_bounds import (
    TemplateBoundError,
    active,
    bounded_list,
    check_count,
    check_printf,
    check_text,
    is_int,
    loop_guard,
    text_size,
)

Filter = Callable[..., Any]
_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})
_PASSED: dict[str, Callable[[Context], Any]] = {
    "context": lambda context: context,
    "eval_context": lambda context: context.eval_ctx,
    "environment": lambda context: context.environment,
}


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str,
         default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _replaced_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    if isinstance(text, bytes) and isinstance(old, bytes) and isinstance(new, bytes):
        text, old, new = (part.decode("latin-1") for part in (text, old, new))
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return len(text)  # the call itself refuses mixed types
    hits = len(text) + 1 if not old else text.count(old)
    if is_int(count) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _joined_size(parts: list[Any], separator: Any) -> int:
    limit = active().max_chars
    gaps = max(len(parts) - 1, 0) * text_size(separator, limit)
    return gaps + sum(text_size(part, limit) for part in parts)


# ------------------------------------------------------------------- string methods


def _text_method(text: str | bytes, name: str, args: tuple[Any, ...],
                 kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Size a str/bytes method call that can grow its text; the args to call it with."""
    current = active()
    if name in _PADDING:
        check_count(_arg(args, kwargs, 0, "width", 0), f"the width given to {name}()")
    elif name == "expandtabs":
        tabsize = _arg(args, kwargs, 0, "tabsize", 8)
        tab = "\t" if isinstance(text, str) else b"\t"
        if is_int(tabsize):
            current.check_size(len(text) + text.count(tab) * max(tabsize, 0),  # type: ignore[arg-type]
                               "the result of expandtabs()")
    elif name == "replace" and len(args) >= 2:
        size = _replaced_size(text, args[0], args[1], _arg(args, kwargs, 2, "count", -1))
        current.check_size(size, "the result of replace()")
    elif name == "join" and args:
        items = bounded_list(args[0], "the input of join()")
        current.check_size(_joined_size(items, text), "the result of join()")
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        current.check_size(len(text) * max(longest, 1), "the result of translate()")
    return args


def presize_call(function: Any, args: tuple[Any, ...],
                 kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a builtin method call that would build too much; the args to call with."""
    if not isinstance(function, types.BuiltinMethodType):
        return args
    owner, name = function.__self__, function.__name__
    if isinstance(owner, str | bytes | bytearray):
        return _text_method(bytes(owner) if isinstance(owner, bytearray) else owner,
                            name, args, kwargs)
    if is_int(owner) and name == "to_bytes":
        check_count(_arg(args, kwargs, 0, "length", 1), "the length given to to_bytes()")
    return args


# --------------------------------------------------------------------------- filters


def _center(_c: Context, value: Any, width: Any = 80, *_a: Any, **_k: Any) -> Any:
    check_count(width, "the width given to center")
    return value


def _indent(_c: Context, value: Any, width: Any = 4, *_a: Any, **_k: Any) -> Any:
    unit = len(width) if isinstance(width, str) else int(width) if is_int(width) else 0
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    active().check_size(check_text(value) + lines * max(unit, 0), "the indented text")
    return value


def _replace(_c: Context, value: Any, old: Any, new: Any, count: Any = None,
             *_a: Any, **_k: Any) -> Any:
    for part in (value, old, new):
        check_text(part)
    size = _replaced_size(str(value), str(old), str(new), count)
    active().check_size(size, "the result of replace")
    return value


def _join(context: Context, value: Any, d: Any = "", attribute: Any = None,
          *_a: Any, **_k: Any) -> Any:
    items = bounded_list(value, "the input of join")
    parts = items if attribute is None else \
        [make_attrgetter(context.environment, attribute)(item) for item in items]
    active().check_size(_joined_size(parts, d), "the result of join")
    return items


def _batch(_c: Context, value: Any, linecount: Any = 1, *_a: Any, **_k: Any) -> Any:
    check_count(linecount, "the batch size")
    return value


def _slice(_c: Context, value: Any, slices: Any = 1, *_a: Any, **_k: Any) -> Any:
    check_count(slices, "the slice count")
    return value


def _format(_c: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
    check_text(value)
    check_printf(value if isinstance(value, str) else str(value), kwargs or args)
    return value


def _wordwrap(_c: Context, value: Any, width: Any = 79, break_long_words: Any = True,
              wrapstring: Any = None, *_a: Any, **_k: Any) -> Any:
    size = check_text(value)
    if isinstance(wrapstring, str) and len(wrapstring) > 1:  # at most one per character
        active().check_size(size + (size + 1) * len(wrapstring), "the wrapped text")
    return value


def _sum(context: Context, value: Any, attribute: Any = None, start: Any = 0,
         *_a: Any, **_k: Any) -> Any:
    items = bounded_list(value, "the input of sum")
    if isinstance(start, Sized):  # summing sequences concatenates them
        parts = items if attribute is None else \
            [make_attrgetter(context.environment, attribute)(item) for item in items]
        size = len(start) + sum(len(part) for part in parts if isinstance(part, Sized))
        active().check_size(size, "the result of sum")
    return items


def _as_text(_c: Context, value: Any, *_a: Any, **_k: Any) -> Any:
    check_text(value, "the text of a value")
    return value


_PRESIZE: dict[str, Filter] = {
    "center": _center, "indent": _indent, "replace": _replace, "join": _join,
    "batch": _batch, "slice": _slice, "format": _format, "wordwrap": _wordwrap,
    "sum": _sum, "string": _as_text, "pprint": _as_text, "tojson": _as_text,
    "urlencode": _as_text, "xmlattr": _as_text,
}


def _bounded_filter(function: Filter, presize: Filter | None) -> Filter:
    passed = _PASSED.get(getattr(getattr(function, "jinja_pass_arg", None), "name", ""))

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        current = active()
        current.tick()
        if presize is not None:
            value = presize(context, value, *args, **kwargs)
        if passed is None:
            result = function(value, *args, **kwargs)
        else:
            result = function(passed(context), value, *args, **kwargs)
        current.built(result)
        return result

    bounded.__name__ = getattr(function, "__name__", "filter")
    bounded.__doc__ = function.__doc__
    return bounded


def bounded_filters(filters: Mapping[str, Filter]) -> dict[str, Filter]:
    """Every filter wrapped, plus the internal ones the template rewrite inserts."""
    bounded = {name: _bounded_filter(f, _PRESIZE.get(name)) for name, f in filters.items()}
    bounded.update({LITERAL: _literal, CONCAT: _concat, LOOP: _loop})
    return bounded


# ----------------------------------------------------- filters the rewrite inserts

LITERAL = "_personae_literal"  # template text, counted as it is output
CONCAT = "_personae_concat"  # the "~" operator
LOOP = "_personae_loop"  # the iterable of a for loop


@pass_context
def _literal(_c: Context, text: str) -> str:
    current = active()
    current.tick()
    current.spend(len(text))
    return text


@pass_context
def _concat(_c: Context, parts: list[Any]) -> str:
    current = active()
    current.tick()
    current.check_size(sum(text_size(part, current.max_chars) for part in parts),
                       "the result of '~'")
    result = "".join([str(part) for part in parts])
    current.spend(len(result))
    return result


@pass_context
def _loop(_c: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    return loop_guard(iterable)


def bounded_lipsum(*args: Any, **kwargs: Any) -> str:
    """``lipsum`` for templates: paragraphs x words within the output bound."""
    paragraphs, most = _arg(args, kwargs, 0, "n", 5), _arg(args, kwargs, 3, "max", 100)
    if not (is_int(paragraphs) and is_int(most)):
        raise TemplateBoundError("lipsum() takes whole numbers")
    active().check_size(paragraphs * most * 12, "the text of lipsum()")
    return str(generate_lorem_ipsum(*args, **kwargs))
