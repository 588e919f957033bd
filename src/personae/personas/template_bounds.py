"""What one prompt-template render may spend: time, output, and the size of what it builds.

A render runs under a :class:`Budget` held in a context variable (so renders in worker
threads never share one). The sandbox in :mod:`personae.personas.template` asks it at
every loop iteration, call, operator, filter and output: the deadline is checked, and
each value the template builds is sized *before* it is computed where the size is
known in advance (repetition, padding and formatting widths, joins, concatenation),
then counted against a total allowance, so no single value outgrows the output bound
and all of them together stay within a fixed multiple of it.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

MAX_RENDER_SECONDS = 1.0  # a render taking longer is stopped
MAX_OUTPUT_CHARS = 64 * 1024  # longest output, and longest value a template may build
MAX_RANGE = 10_000  # most numbers range() may count
MAX_POWER_BITS = 4096  # largest integer "**" and "*" may build
ALLOWANCE_FACTOR = 128  # everything one render builds: this many times the output bound


class TemplateBoundError(SecurityError):
    """A template broke one of its bounds; the message names the bound."""


@dataclass(slots=True)
class Budget:
    """The bounds of one render and what it has spent so far."""

    seconds: float
    max_chars: int
    deadline: float
    allowance: float
    spent: int = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateBoundError(f"rendering took longer than {self.seconds:g} s")

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.max_chars:
            raise TemplateBoundError(f"{what} would be longer than the output bound "
                                     f"({self.max_chars:,} characters)")

    def spend(self, size: int) -> None:
        self.spent += size
        if self.spent > self.allowance:
            raise TemplateBoundError(f"the template built more than {self.allowance:,.0f} "
                                     "characters in all")

    def built(self, value: Any) -> None:
        """Count a value an operation just made: its own length, and its items'."""
        if isinstance(value, str | bytes | bytearray | list | tuple | dict | set | frozenset):
            self.check_size(len(value))
            self.spend(footprint(value))


# Outside a render (a template rendered directly, constant folding): sizes only.
_UNTIMED = Budget(math.inf, MAX_OUTPUT_CHARS, math.inf, math.inf)
_active: ContextVar[Budget] = ContextVar("template_budget", default=_UNTIMED)


def active() -> Budget:
    return _active.get()


@contextmanager
def budget(seconds: float, max_chars: int) -> Iterator[Budget]:
    """Run the block as one render with these bounds."""
    current = Budget(seconds, max_chars, time.monotonic() + seconds,
                     float(max_chars * ALLOWANCE_FACTOR))
    token = _active.set(current)
    try:
        yield current
    finally:
        _active.reset(token)


# ---------------------------------------------------------------------------- sizes

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def footprint(value: Any) -> int:
    """Characters/items a value holds, one level down (a list of strings counts both)."""
    if not isinstance(value, _SIZED):
        return 0
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    items: Iterable[Any] = itertools.chain(value, value.values()) \
        if isinstance(value, dict) else value
    return len(value) + sum(len(item) for item in items if isinstance(item, _SIZED))


def _scalar_size(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return int(value.bit_length() * 0.302) + 2
    if isinstance(value, float):
        return 24
    return 80  # a repr such as <Macro 'x'>


def _children(value: Any) -> Iterable[Any] | None:
    """What a container's text shows, or None for a scalar."""
    if isinstance(value, Namespace):
        return [value._Namespace__attrs]
    if isinstance(value, Mapping):
        return itertools.chain.from_iterable(value.items())
    if isinstance(value, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
        return value
    return None


def text_size(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` takes, counted up to just past ``limit``
    without building it (so a huge list is sized, not printed)."""
    if isinstance(value, str):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):  # inside a container: quoted, maybe escaped
            total += len(item) + 2 if item.isprintable() else 4 * len(item) + 2
        elif isinstance(item, bytes | bytearray):
            total += 4 * len(item) + 3
        elif (children := _children(item)) is not None:
            before = len(stack)
            stack.extend(itertools.islice(children, limit + 1))
            total += 2 * (len(stack) - before) + 2
        else:
            total += _scalar_size(item)
    return total


def check_text(value: Any, what: str = "a value") -> int:
    """The text size of ``value``, refused past the output bound."""
    current = active()
    size = text_size(value, current.max_chars)
    current.check_size(size, what)
    return size


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_count(count: Any, what: str) -> None:
    """A width, length or item count given to an operation, within the output bound."""
    limit = active().max_chars
    if is_int(count) and count > limit:
        raise TemplateBoundError(f"{what} ({count:,}) is larger than the output bound "
                                 f"({limit:,})")


def power_bits(base: Any, exponent: Any) -> int:
    """Rough size in bits of ``base ** exponent`` for integers; 0 otherwise."""
    if is_int(base) and is_int(exponent):
        return int(abs(exponent) * max(base.bit_length(), 1))
    return 0


def product_size(left: Any, right: Any) -> tuple[int, str]:
    """Size of ``left * right`` and its unit: repeated sequences, or integer bits."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | bytes | list | tuple) and is_int(count):
            return len(sequence) * int(count), "items"
    if is_int(left) and is_int(right):
        return left.bit_length() + right.bit_length(), "bits"
    return 0, "items"


def sum_size(left: Any, right: Any) -> int:
    """Length of ``left + right`` for sequences; 0 otherwise."""
    if isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left)):
        return len(left) + len(right)
    return 0


# ------------------------------------------------------------------------ formatting

_PRINTF_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[diouxXeEfFgGcrsa%]")
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d*))?[a-zA-Z%]?", re.S)


def check_printf(template: str | bytes, args: Any) -> None:
    """Refuse ``template % args`` before it runs if widths or arguments make it too long."""
    current = active()
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    specs = _PRINTF_SPEC.findall(text)
    total = len(text)
    for width, precision in specs:
        if "*" in (width, precision):
            raise TemplateBoundError("'*' widths are not supported in '%' formatting")
        for number in (width, precision):
            check_count(int(number or 0), "a formatting width")
        total += int(width or 0) + int(precision or 0)
    if specs:
        total += len(specs) * text_size(args, current.max_chars)
    current.check_size(total, "the formatted text")


def spec_widths(spec: str) -> int:
    """Width plus precision named by a ``str.format`` spec (0 for a custom one)."""
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is None:
        return 0
    return int(match[1] or 0) + int(match[2] or 0)


# --------------------------------------------------------------------------- helpers


def bounded_list(items: Iterable[Any], what: str) -> list[Any]:
    """``items`` as a list, refused past the output bound (in items) before it is built."""
    limit = active().max_chars
    found = list(itertools.islice(items, limit + 1))
    active().check_size(len(found), what)
    return found


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most MAX_RANGE numbers."""
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = MAX_RANGE + 1
    if count > MAX_RANGE:
        raise TemplateBoundError(f"range() may count at most {MAX_RANGE:,} numbers")
    return numbers


def loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every loop iteration checks the deadline, so nested loops cannot run on."""
    current = active()
    for item in iterable:
        current.tick()
        yield item
