"""Every deterministic assertion kind, passing and failing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from personae.quality.assertions import CHECKS, Outcome, ReplyContext, jaccard
from personae.quality.suite import Assertion

ADAPTER: TypeAdapter[Any] = TypeAdapter(Assertion)
TINA = "Tina Kulkarni"


def run(spec: dict[str, Any], reply: str, **context: Any) -> Outcome:
    check = ADAPTER.validate_python(spec)
    return CHECKS[check.kind](check, ReplyContext(reply, context.pop("name", TINA), **context))


@pytest.mark.parametrize(("spec", "good", "bad"), [
    ({"kind": "language", "is": "hi"}, "मेरी शादी कब होगी? कृपया अपनी जन्म तिथि बताइए।",
     "When will I get married? Please tell me your date of birth."),
    ({"kind": "language", "is": "en-GB"}, "Please tell me your date of birth first.",
     "कृपया पहले अपनी जन्म तिथि बताइए।"),
    ({"kind": "contains_any", "words": ["Python", "list"]}, "Use a LIST here.", "Use a tuple."),
    ({"kind": "contains_all", "words": ["for", "range"]}, "for i in range(3)", "for i in x"),
    ({"kind": "contains_none", "words": ["guarantee"]}, "It may help.", "I GUARANTEE it."),
    ({"kind": "regex", "pattern": r"\d{4}"}, "born in 1990", "born long ago"),
    ({"kind": "regex", "pattern": "sorry", "must_match": False}, "Sure.", "sorry, no"),
    ({"kind": "length", "min_words": 2, "max_chars": 20}, "two words", "one"),
    ({"kind": "length", "max_words": 2}, "two words", "three words here"),
    ({"kind": "json_schema", "schema": {"type": "object", "required": ["score"],
                                        "properties": {"score": {"type": "integer"}}}},
     '```json\n{"score": 7}\n```', '{"score": "high"}'),
    ({"kind": "no_persona_break"}, "मैं तीना हूँ। I am Tina, your astrologer.",
     "As an AI language model, I cannot predict that."),
    ({"kind": "no_persona_break", "extra_phrases": ["ChatGPT"]}, "I'm happy to help.",
     "I was made like chatgpt."),
    ({"kind": "no_loops", "n": 2, "max_repeated_ngram": 2}, "one two three four",
     "go on go on go on go on"),
    ({"kind": "max_platform_chars", "platform": "x"}, "short post", "x" * 281),
    ({"kind": "max_platform_chars", "chars": 5}, "12345", "123456"),
])
def test_each_kind_passes_and_fails(spec: dict[str, Any], good: str, bad: str) -> None:
    assert run(spec, good).passed is True, run(spec, good).detail
    failed = run(spec, bad)
    assert failed.passed is False
    assert failed.detail


def test_expertise_keywords_come_from_the_persona() -> None:
    spec = {"kind": "contains_any", "from": "expertise_keywords"}
    assert run(spec, "आपकी शादी", expertise_keywords=["शादी", "marriage"]).passed is True
    assert run(spec, "hello", expertise_keywords=["शादी"]).passed is False
    assert run(spec, "hello").passed is None  # no keywords: skipped, not passed


def test_claiming_another_name_breaks_persona() -> None:
    spec = {"kind": "no_persona_break"}
    broken = run(spec, "Actually, my name is Claude.")
    assert broken.passed is False
    assert "Claude" in broken.detail
    assert run(spec, "I'm Tina and I'm Sorry to hear that.").passed is True


def test_a_reply_too_like_the_previous_one_is_a_loop() -> None:
    spec = {"kind": "no_loops"}
    same = "The stars say you will marry soon, be patient."
    assert run(spec, same, previous=same).passed is False
    assert run(spec, "Tell me your birth date.", previous=same).passed is True
    assert jaccard(set(), set()) == 1.0
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


def test_json_that_is_not_an_object_fails() -> None:
    outcome = run({"kind": "json_schema", "schema": {}}, "[1, 2]")
    assert (outcome.passed, outcome.detail) == (False, "JSON list, not an object")
    assert run({"kind": "json_schema", "schema": {}}, "not json").passed is False


def test_greeting_compares_the_session_greeting() -> None:
    exact, loose = {"kind": "greeting"}, {"kind": "greeting", "exact": False}
    assert run(exact, "", greeting="Hi, User!", expected_greeting="Hi, User!").passed is True
    assert run(exact, "", greeting="Hi, {{user}}!", expected_greeting="Hi, User!").passed \
        is False
    assert run(loose, "", greeting="hi,  user!", expected_greeting="Hi, User!").passed is True
    assert run(exact, "", greeting=None, expected_greeting=None).passed is True
    assert run(exact, "", greeting="Hello", expected_greeting=None).passed is False


def test_empty_reply_has_no_language() -> None:
    assert run({"kind": "language", "is": "en"}, "  ").passed is False
