"""A definition's text is bounded when it is written, never when it is read.

A card with a 10 MB description was once accepted (uploads may be 16 MiB); every page
showing the persona then weighed 63 MB and every chat with it failed. Each free-text
field has a maximum length and the whole definition a maximum size, refused with a 422
naming the field and its bound. A persona stored before the bounds stays readable,
exportable and archivable, and is told the bound when its text is next written.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from personae.auth.principal import Principal
from personae.errors import ValidationFailed
from personae.personas.cards import import_card
from personae.personas.definition_bounds import (
    MAX_DEFINITION_CHARS,
    MAX_LABEL_CHARS,
    MAX_TEXT_CHARS,
)
from personae.personas.records import NewVersion
from personae.personas.schema import PersonaDefinition, Status, Visibility
from personae.personas.validation import parse_persona
from personae.runtime import Runtime

LONG = "x" * (MAX_TEXT_CHARS + 1)
CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Seraphina", "description": "A guardian of the forest.",
                 "personality": "gentle", "scenario": "a glade at dusk",
                 "first_mes": "Welcome, traveller.", "mes_example": ""}}


def _issues(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        parse_persona(raw)
    return {issue.path: issue.message for issue in refused.value.issues}


@pytest.mark.parametrize(("raw", "path"), [
    ({"description": LONG}, "description"),
    ({"system_prompt": LONG}, "system_prompt"),
    ({"post_history_instructions": LONG}, "post_history_instructions"),
    ({"greetings": ["Hello.", LONG]}, "greetings[1]"),
    ({"example_dialogues": [{"user": "Hi", "reply": LONG}]}, "example_dialogues[0].reply"),
    ({"example_dialogues": [{"user": LONG, "reply": "Hi"}]}, "example_dialogues[0].user"),
    ({"knowledge": [{"content": "short"}, {"content": LONG}]}, "knowledge[1].content"),
    ({"traits": {"scenario": LONG}}, "traits.scenario"),
    ({"traits": {"style": {"tone": "x" * MAX_TEXT_CHARS, "pace": ["slow"]}}}, "traits.style"),
])
def test_each_long_text_field_is_bounded_naming_it_and_the_bound(raw: dict[str, Any],
                                                                  path: str) -> None:
    found = _issues({"id": "ada", "name": "Ada", **raw})
    assert list(found) == [path]
    assert f"at most {MAX_TEXT_CHARS:,} are accepted" in found[path]


@pytest.mark.parametrize(("raw", "path"), [
    ({"name": "n" * (MAX_LABEL_CHARS + 1)}, "name"),
    ({"display_name": "n" * (MAX_LABEL_CHARS + 1)}, "display_name"),
    ({"role": "r" * (MAX_LABEL_CHARS + 1)}, "role"),
    ({"speciality": "s" * (MAX_LABEL_CHARS + 1)}, "speciality"),
    ({"tags": ["ok", "t" * (MAX_LABEL_CHARS + 1)]}, "tags[1]"),
    ({"expertise_keywords": ["k" * (MAX_LABEL_CHARS + 1)]}, "expertise_keywords[0]"),
])
def test_short_fields_have_a_short_bound(raw: dict[str, Any], path: str) -> None:
    found = _issues({"id": "ada", "name": "Ada", **raw})
    assert list(found) == [path]
    assert f"at most {MAX_LABEL_CHARS:,} are accepted" in found[path]


def test_text_at_its_bound_is_accepted() -> None:
    at_bound = "y" * MAX_TEXT_CHARS
    parsed = parse_persona({"id": "ada", "name": "n" * MAX_LABEL_CHARS,
                            "description": at_bound, "greetings": [at_bound],
                            "traits": {"scenario": at_bound}})
    assert parsed.description == at_bound


def test_the_whole_definition_is_bounded_naming_its_largest_field() -> None:
    count = MAX_DEFINITION_CHARS // MAX_TEXT_CHARS + 1
    greetings = ["g" * MAX_TEXT_CHARS] * count  # each within its own bound
    found = _issues({"id": "ada", "name": "Ada", "greetings": greetings})
    assert list(found) == ["greetings"]
    assert f"at most {MAX_DEFINITION_CHARS:,} characters" in found["greetings"]
    assert "the largest field" in found["greetings"]


def test_a_card_with_a_huge_description_is_refused_naming_it() -> None:
    card = copy.deepcopy(CARD)
    card["data"]["description"] = "d" * (10 * 1024 * 1024)
    with pytest.raises(ValidationFailed) as refused:
        import_card(json.dumps(card).encode(), filename="huge.json")
    assert [issue.path for issue in refused.value.issues] == ["description"]
    assert "10,485,760 characters" in refused.value.message


def _oversized() -> PersonaDefinition:
    """A card persona as it could be stored before the bounds: a 10 MB description,
    in the definition and in the stored card."""
    definition = import_card(json.dumps(CARD).encode(), persona_id="alice/seraphina").definition
    huge = "d" * (10 * 1024 * 1024)
    extensions = copy.deepcopy(definition.extensions)
    extensions["chara_card"]["data"]["description"] = huge
    return definition.model_copy(update={"description": huge, "extensions": extensions})


async def _store(runtime: Runtime, owner: Principal, definition: PersonaDefinition) -> None:
    """Written straight to the store, as a release before the bounds would have."""
    await runtime.personas.store.create(
        [(NewVersion(definition, owner.name, "created"), owner.user_id, Visibility.private)])


async def test_a_stored_oversized_persona_stays_readable_exportable_and_archivable(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice, service = people["alice"], runtime.personas
    stored = _oversized()
    await _store(runtime, alice, stored)
    found = (await service.get(alice, stored.id)).record
    assert found.definition.description == stored.description
    assert (await service.version(alice, stored.id, 1)).definition.description \
        == stored.description
    content, _, _ = await service.export(alice, stored.id, "card")
    assert json.loads(content)["data"]["description"] == stored.description
    archived = await service.set_status(alice, stored.id, Status.archived)
    restored = await service.set_status(alice, stored.id, Status.active)
    assert (archived.version, restored.version) == (2, 3)
    assert restored.definition.description == stored.description


async def test_writing_an_oversized_persona_again_is_refused_until_it_is_shortened(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice, service = people["alice"], runtime.personas
    stored = _oversized()
    await _store(runtime, alice, stored)
    with pytest.raises(ValidationFailed) as renamed:
        await service.patch(alice, stored.id, {"display_name": "Sera"}, base_version=1)
    assert [issue.path for issue in renamed.value.issues] == ["description"]
    with pytest.raises(ValidationFailed) as still_big:  # the stored card holds it too
        await service.patch(alice, stored.id, {"description": "A guardian."}, base_version=1)
    assert [issue.path for issue in still_big.value.issues] == ["extensions"]
    assert f"at most {MAX_DEFINITION_CHARS:,} characters" in still_big.value.message
    fixed = await service.patch(alice, stored.id, {"description": "A guardian.",
                                                   "extensions": {"chara_card": None}},
                                base_version=1)
    assert fixed.version == 2
    with pytest.raises(ValidationFailed) as rolled_back:
        await service.rollback(alice, stored.id, 1)
    assert [issue.path for issue in rolled_back.value.issues] == ["description"]
    assert (await service.get(alice, stored.id)).record.version == 2
