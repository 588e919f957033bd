"""Prompt templates render within bounds: time, output, and the size of what they build.

Each attack below once blocked the server (a render on the event loop for minutes) or
exhausted its memory; each is now refused in milliseconds, with little memory, by an
error that names the bound. Templates are also rendered once at create time, so a
persona whose template breaks a bound is refused with a 422 naming ``prompt_template``,
and rendering for conversations happens off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from personae.auth.principal import Principal
from personae.errors import Conflict, ValidationFailed
from personae.personas.card_export import card_from_persona
from personae.personas.schema import PersonaDefinition
from personae.personas.template import (
    MAX_TEMPLATE_CHARS,
    TemplateLimits,
    compile_template,
    render_template,
)
from personae.personas.template_bounds import MAX_OUTPUT_CHARS, MAX_RENDER_SECONDS
from personae.personas.validation import parse_persona
from personae.runtime import Runtime
from tests.support.measure import measured

CONTEXT: dict[str, Any] = {"persona": {"name": "Ada", "knowledge": [
    {"title": "t1", "content": "c" * 100}, {"title": "t2", "content": "d"}]},
    "sections": {"identity": "You are Ada."}, "traits": {}, "default": "hello world " * 20}
FAST = MAX_RENDER_SECONDS / 2  # generous: refusals take milliseconds
LITTLE_MEMORY = 16 * 1024 * 1024
STRING_DOUBLING = ("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}"
                   "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}")
NESTED_LOOPS = ("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}"
                "{% endfor %}")
SILENT_LOOPS = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"


@pytest.fixture(autouse=True)
def _warm() -> None:
    """Import what validation imports lazily, so measurements see only the render."""
    parse_persona({"name": "Warm", "language": "hi", "prompt_template": "{{ default }}"})



def _refused(template: str, bound: str, limits: TemplateLimits = TemplateLimits()
             ) -> tuple[float, int]:
    def run() -> None:
        with pytest.raises(ValueError, match=bound):
            render_template(template, CONTEXT, limits)
    return measured(run)


# ---------------------------------------------------------------- the three attacks


@pytest.mark.parametrize(("template", "bound"), [
    (NESTED_LOOPS, r"line 1: range\(\) may count at most 10,000 numbers"),
    ("{{ '%0999999999d'|format(1) }}", r"formatting width \(999,999,999\) is larger than "
                                       r"the output bound \(65,536\)"),
    (STRING_DOUBLING, r"the result of '~' would be longer than the output bound"),
], ids=["nested-range-loops", "format-width", "string-doubling"])
def test_the_reported_attacks_are_refused_fast_with_little_memory(template: str,
                                                                   bound: str) -> None:
    elapsed, peak = _refused(template, bound)
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


def test_compiling_never_evaluates_a_constant_expression() -> None:
    """``'%0999999999d'|format(1)`` once took 1 GB at create time, folded while compiling."""
    elapsed, peak = measured(lambda: compile_template("{{ '%0999999999d'|format(2) }}"))
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


# ------------------------------------------------------------------ time and output


def test_a_render_stops_at_its_deadline() -> None:
    elapsed, _ = _refused(SILENT_LOOPS, r"rendering took longer than 0.2 s",
                          TemplateLimits(seconds=0.2))
    assert elapsed < 0.2 + 1.0  # stopped near the deadline, not after 10**8 iterations


def test_recursion_without_loops_stops_at_the_deadline() -> None:
    template = ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                "{% endmacro %}{{ f(40) }}")
    elapsed, _ = _refused(template, r"took longer than 0.2 s", TemplateLimits(seconds=0.2))
    assert elapsed < 0.2 + 1.0


def test_output_stops_at_its_bound() -> None:
    template = "{% for i in range(50) %}" + "x" * 20 + "{% endfor %}"
    assert render_template(template, CONTEXT, TemplateLimits(max_output=1000)) == "x" * 1000
    with pytest.raises(ValueError, match=r"the output would be longer than the output bound "
                                         r"\(999 characters\)"):
        render_template(template, CONTEXT, TemplateLimits(max_output=999))


def test_the_default_bounds() -> None:
    assert (TemplateLimits().seconds, TemplateLimits().max_output) == (1.0, 64 * 1024)
    assert MAX_OUTPUT_CHARS == 64 * 1024


# ------------------------------------------------------------ every way to grow text


@pytest.mark.parametrize(("template", "bound"), [
    ("{{ '%0999999999d' % 1 }}", "formatting width"),
    ("{{ '%.999999999f' % 1.5 }}", "formatting width"),
    ("{{ '%*d' % (5, 1) }}", r"'\*' widths are not supported"),
    ("{{ '{:0999999999}'.format(1) }}", "formatting width"),
    ("{{ '{:{w}}'.format(1, w=999999999) }}", "formatting width"),
    ("{{ ('{0}' * 20000).format('x' * 1000) }}", "the formatted text"),
    ("{% set ns = namespace(s='x' * 10) %}{% for i in range(40) %}"
     "{% set ns.s = ns.s + ns.s %}{% endfor %}", r"the result of '\+'"),
    ("{{ 'a' * 100000000 }}", r"the result of '\*'"),
    ("{{ [1] * 100000000 }}", r"the result of '\*'"),
    ("{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
     "{% endfor %}", r"the result of '\*' would be larger than 4096 bits"),
    ("{{ 9 ** (9 ** 9) }}", r"the result of '\*\*'"),
    ("{{ 'a'|center(1000000000) }}", "the width given to center"),
    ("{{ 'a'.center(1000000000) }}", r"the width given to center\(\)"),
    ("{{ 'a'.zfill(1000000000) }}", r"zfill\(\)"),
    ("{{ 'a'.ljust(1000000000) }}", r"ljust\(\)"),
    ("{{ ('\t' * 10000).expandtabs(10000) }}", r"expandtabs\(\)"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", r"to_bytes\(\)"),
    ("{{ ('a\n' * 1000)|indent(100000) }}", "the indented text"),
    ("{{ ('a' * 5000)|replace('', 'b' * 5000) }}", "the result of replace"),
    ("{{ ('a' * 5000).replace('', 'b' * 5000) }}", r"the result of replace\(\)"),
    ("{% set s = 'x' * 60000 %}{{ range(10000)|join(s) }}", "the result of join"),
    ("{% set s = 'x' * 60000 %}{{ s.join(['a'] * 10000) }}", r"the result of join\(\)"),
    ("{{ [1]|batch(1000000000, 'x')|list }}", "the batch size"),
    ("{{ [1]|slice(1000000000)|list }}", "the slice count"),
    ("{{ ('x ' * 30000)|wordwrap(1, wrapstring='-' * 100) }}", "the wrapped text"),
    ("{% set row = [1] * 10000 %}{{ [row, row, row, row, row, row, row]|sum(start=[]) }}",
     "the result of sum"),
    ("{{ lipsum(100000) }}", r"lipsum\(\)"),
    ("{{ ['x' * 60000] * 60000 }}", "characters in all"),
    ("{% set s = 'x' * 60000 %}{{ [s, s]|string }}", "the text of a value"),
    ("{% macro f() %}{% for i in range(10000) %}" + "y" * 60000 + "{% endfor %}{% endmacro %}"
     "{{ f()|length }}", "characters in all"),
    ("{% set ns = namespace(l=[], s='x' * 60000) %}{% for i in range(10000) %}"
     "{% set ns.l = ns.l + [ns.s[1:]] %}{% endfor %}", "characters in all"),
    ("{% set ns = namespace(l=[], s='x' * 60000) %}{% for i in range(10000) %}"
     "{% set ns.l = ns.l + [ns.s.split('y')] %}{% endfor %}", "characters in all"),
])
def test_every_way_to_grow_a_value_is_bounded(template: str, bound: str) -> None:
    elapsed, peak = _refused(template, bound)
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ '{:>6}|{:.2f}|{!r}'.format('a', 3.14159, 'q') }}", "     a|3.14|'q'"),
    ("{{ '%5.2f %s %%' % (3.14159, 'x') }}", " 3.14 x %"),
    ("{{ '%(a)s-%(a)s' % {'a': 1} }}", "1-1"),
    ("{{ 'ab'|center(6) }}|{{ 'a\nb'|indent(2) }}", "  ab  |a\n  b"),
    ("{{ persona.knowledge|join(', ', attribute='title') }}", "t1, t2"),
    ("{{ [1, 2, 3]|sum }} {{ range(3)|map('string')|join('-') }}", "6 0-1-2"),
    ("{% for x in range(3) %}{{ loop.index }}/{{ loop.length }};{% endfor %}", "1/3;2/3;3/3;"),
    ("{% set ns = namespace(s='') %}{% for k in persona.knowledge %}"
     "{% set ns.s = ns.s ~ k.title ~ ';' %}{% endfor %}{{ ns.s }}", "t1;t2;"),
    ("{% filter upper %}{% for i in range(2) %}x{{ i }}{% endfor %}{% endfilter %}", "X0X1"),
    ("{% macro m(a) %}<{{ a }}>{{ caller() }}{% endmacro %}{% call m(1) %}in{% endcall %}",
     "<1>in"),
    ("{% for a in [[1, [2]], [3]] recursive %}{% if a is iterable %}{{ loop(a) }}"
     "{% else %}{{ a }}{% endif %}{% endfor %}", "123"),
    ("{{ ('<b>%s</b>'|safe) % '<i>' }}", "<b>&lt;i&gt;</b>"),
    ("{{ default|wordwrap(30)|length > 0 }} {{ 'a-b'.replace('-', '+') }}", "True a+b"),
    ("{{ sections.identity ~ ' ' ~ persona.name }} {{ 2 ** 10 }} {{ 'ab' * 2 }}",
     "You are Ada. Ada 1024 abab"),
])
def test_ordinary_templates_still_render(template: str, expected: str) -> None:
    assert render_template(template, CONTEXT) == expected


# ---------------------------------------------------------------- at create time


def _issues(raw: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_persona(raw)
    errors: list[dict[str, str]] = caught.value.details["errors"]
    return errors


@pytest.mark.parametrize(("template", "bound"), [
    (STRING_DOUBLING, "output bound"),
    ("{{ '%0999999999d'|format(1) }}", "formatting width"),
    (NESTED_LOOPS, "range"),
    ("Hi {{ persona.nickname }}", "no attribute 'nickname'"),
])
def test_a_template_that_breaks_a_bound_is_refused_at_create_time(template: str,
                                                                   bound: str) -> None:
    def run() -> None:
        (issue,) = _issues({"name": "Ada", "prompt_template": template})
        assert issue["path"] == "prompt_template"
        assert bound in issue["message"]
    elapsed, peak = measured(run)
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


def test_a_template_longer_than_the_output_bound_is_refused() -> None:
    (issue,) = _issues({"name": "Ada", "prompt_template": "x" * (MAX_TEMPLATE_CHARS + 1)})
    assert issue == {"path": "prompt_template", "message": "longer than 65,536 characters"}


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"inner": value}
    return value


def test_traits_and_extensions_nested_too_deep_are_refused_by_name() -> None:
    assert parse_persona({"name": "Ada", "traits": {"style": _nested(64)}}).traits
    issues = _issues({"name": "Ada", "traits": {"style": _nested(900)},
                      "extensions": {"tool": [_nested(70)]}})
    assert issues == [{"path": "traits.style", "message": "nested deeper than 64 levels"},
                      {"path": "extensions.tool", "message": "nested deeper than 64 levels"}]


# ------------------------------------------------------------- off the event loop


def _stored(persona_id: str, template: str) -> PersonaDefinition:
    """A definition as stored before templates were rendered at create time."""
    return PersonaDefinition.model_validate({"id": persona_id, "name": persona_id.title(),
                                             "prompt_template": template})


async def test_rendering_for_a_turn_runs_off_the_event_loop(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    await runtime.personas.create(people["admin"], _stored("slow", SILENT_LOOPS),
                                  global_scope=True)
    await runtime.personas.usable(people["alice"], "slow")  # the record is cached now
    render = asyncio.create_task(runtime.prepared.usable(people["alice"], "slow"))
    await asyncio.wait({render}, timeout=MAX_RENDER_SECONDS / 4)
    assert not render.done()  # the loop got control back while the template rendered
    with pytest.raises(Conflict, match=r"persona 'slow': .*took longer than 1 s"):
        await render


async def test_concurrent_first_uses_of_a_version_share_one_render(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    await runtime.personas.create(people["admin"], _stored("ada", "Hi {{ persona.name }}"),
                                  global_scope=True)
    first, second = await asyncio.gather(runtime.prepared.usable(people["alice"], "ada"),
                                         runtime.prepared.usable(people["bob"], "ada"))
    assert first is second
    assert first.system_prompt == "Hi Ada"


def test_exporting_a_card_does_not_render_the_template() -> None:
    """Export compares the persona with its stored card; that is no reason to render."""
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Slow", "extensions": {"personae": {"prompt_template": SILENT_LOOPS}}}}
    persona = PersonaDefinition.model_validate({
        "id": "slow", "name": "Slow", "prompt_template": SILENT_LOOPS,
        "extensions": {"chara_card": card}})
    started = time.thread_time()
    exported = card_from_persona(persona)
    assert time.thread_time() - started < FAST
    assert exported["data"]["extensions"]["personae"]["prompt_template"] == SILENT_LOOPS
