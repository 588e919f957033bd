"""Validation: loose input to a definition, with field-path messages."""

from __future__ import annotations

import pytest

from personae.errors import PermissionDenied, ValidationFailed
from personae.personas.validation import in_namespace, parse_persona


def _messages(raw: object, **kwargs: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_persona(raw, **kwargs)
    return [f"{e['path']}: {e['message']}" for e in caught.value.details["errors"]]


@pytest.mark.parametrize(("raw", "expected"), [
    ({"name": "X", "greetings": [" "]}, "greetings[0]: must not be empty"),
    ({"name": "X", "greetings": ["hi", ""]}, "greetings[1]: must not be empty"),
    ({"name": ""}, "name: must not be empty"),
    ({"id": "Bad Id", "name": "X"},
     "id: must be a slug (lowercase letters, digits, '-' or '_', starting with a letter or "
     "digit), optionally after its owner's namespace, as in 'alice/tutor'; at most 64 "
     "characters"),
    ({"name": "X", "voice": {"speed": 9}}, "voice.speed: input should be less than or equal to 4"),
    ({"name": "X", "language_policy": "loose"},
     "language_policy: must be one of 'strict', 'prefer' or 'mirror'"),
    ({"name": "X", "language": "Notalanguage-123"},
     "language: 'Notalanguage-123' is not a known language name or BCP-47 code"),
    ({"name": "X", "example_dialogues": [{"user": "hi"}]},
     "example_dialogues[0].reply: is required"),
    ({"name": "X", "tags": "astro"}, "tags: must be a list"),
    ({"name": "X", "sytem_prompt": "hello"},
     "sytem_prompt: unknown field; did you mean 'system_prompt'?"),
    ({"name": "X", "model": {"temperature": 3}},
     "model.temperature: input should be less than or equal to 2"),
    ({"name": "X", "prompt_template": "{% if %}"},
     "prompt_template: line 1: Expected an expression, got 'end of statement block'"),
])
def test_each_problem_names_its_field(raw: dict, expected: str) -> None:
    assert expected in _messages(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"id": "alice/../bob", "name": "X"}, "id: must be a slug (lowercase letters"),
    ({"id": "a/b/c", "name": "X"}, "id: must be a slug (lowercase letters"),
    ({"id": "/tutor", "name": "X"}, "id: must be a slug (lowercase letters"),
    ({"id": "Alice/tutor", "name": "X"}, "id: must be a slug (lowercase letters"),
    ({"id": "alice/versions", "name": "X"}, "id: 'versions' is a reserved word in persona URLs"),
    ({"name": "Diff"}, "id: 'diff' is a reserved word in persona URLs"),
])
def test_ids_that_cannot_be_used(raw: dict, expected: str) -> None:
    (message,) = _messages(raw)
    assert message.startswith(expected)


def test_all_problems_are_reported_at_once() -> None:
    messages = _messages({"id": "x", "name": "", "greetings": [""], "voice": {"speed": 0}})
    assert sorted(messages) == ["greetings[0]: must not be empty", "name: must not be empty",
                                "voice.speed: input should be greater than or equal to 0.25"]


def test_not_a_mapping() -> None:
    assert _messages(["a", "list"]) == [": a persona must be a mapping, got list"]


def test_source_prefixes_the_message() -> None:
    with pytest.raises(ValidationFailed, match=r"^tina.yaml: greetings\[0\]: must not be empty$"):
        parse_persona({"name": "X", "greetings": [""]}, source="tina.yaml")


def test_seed_style_record_is_understood() -> None:
    definition = parse_persona({
        "name": "Tina Kulkarni", "speciality": "Vedic Marriage", "language": "Hindi",
        "gender": "Female", "voice_id": "nova", "persona": "Warm Vedic astrologer",
        "greeting": "नमस्ते", "expertise_keywords": ["विवाह", "marriage", "marriage"],
        "status": "active", "consultation_style": {"pace": "slow"},
        "personality_traits": {"warmth": 9}})
    assert definition.id == "tina-kulkarni"
    assert definition.language == "hi"
    assert definition.voice.voice_id == "nova"
    assert definition.description == "Warm Vedic astrologer"
    assert definition.greetings == ["नमस्ते"]
    assert definition.expertise_keywords == ["विवाह", "marriage"]
    assert list(definition.traits) == ["consultation_style", "personality_traits"]


def test_greeting_aliases_combine_in_order() -> None:
    definition = parse_persona({"name": "X", "greeting": "Hi", "greetings": "Hello",
                                "alternate_greetings": ["Hey"]})
    assert definition.greetings == ["Hi", "Hello", "Hey"]


def test_alias_and_field_together_is_an_error() -> None:
    assert _messages({"name": "X", "expertise": ["a"], "expertise_keywords": ["b"]}) == [
        "expertise: given together with 'expertise_keywords'; use 'expertise_keywords' only"]


def test_trait_given_twice_is_an_error() -> None:
    assert _messages({"name": "X", "style": "a", "traits": {"style": "b"}}) == [
        "style: given both at the top level and in traits"]


def test_default_id_and_fallbacks() -> None:
    assert parse_persona({"name": "X"}, default_id="from-file").id == "from-file"
    assert parse_persona({"name": "Ünïcode Näme"}).id == "unicode-name"
    assert _messages({"name": "★★"}) == ["id: is required"]


def test_content_hash_tracks_content_and_trait_order() -> None:
    a = parse_persona({"name": "X", "traits": {"a": 1, "b": 2}})
    same = parse_persona({"traits": {"a": 1, "b": 2}, "name": "X"})
    reordered = parse_persona({"name": "X", "traits": {"b": 2, "a": 1}})
    assert a.content_hash() == same.content_hash()
    assert a.content_hash() != reordered.content_hash()


def test_an_id_may_name_its_owners_namespace() -> None:
    assert parse_persona({"id": "alice/tutor", "name": "T"}).id == "alice/tutor"
    assert parse_persona({"id": "tina-kulkarni", "name": "T"}).id == "tina-kulkarni"


def test_a_plain_id_goes_in_the_owners_namespace() -> None:
    assert in_namespace(parse_persona({"name": "Tutor"}), "alice").id == "alice/tutor"
    assert in_namespace(parse_persona({"id": "alice/tutor", "name": "T"}), "alice").id \
        == "alice/tutor"
    assert in_namespace(parse_persona({"id": "tina", "name": "T"}), None).id == "tina"


def test_another_namespace_is_refused_without_looking() -> None:
    with pytest.raises(PermissionDenied, match="only create personas in your own namespace "
                                               "'bob/'"):
        in_namespace(parse_persona({"id": "alice/tutor", "name": "T"}), "bob")
    with pytest.raises(ValidationFailed, match="a global persona has a plain id"):
        in_namespace(parse_persona({"id": "alice/tutor", "name": "T"}), None)


def test_a_namespaced_id_stays_within_64_characters() -> None:
    longest = parse_persona({"id": "n" * 64, "name": "T"})
    with pytest.raises(ValidationFailed, match="longer than 64 characters"):
        in_namespace(longest, "alice")
    assert _messages({"id": "alice/" + "n" * 60, "name": "X"}) == [
        "id: string should have at most 64 characters"]
