"""An id made from a persona's name fits its namespace; an id someone chose is never
changed. A card named "Captain Nemo of the Nautilus, Master of the Twenty Thousand
Leagues" once could not be imported at all (its slug, with ``local/`` before it, was
over 64 characters, and no import form lets the id be chosen)."""

from __future__ import annotations

import json
import re

import pytest

from personae.auth.principal import Principal
from personae.errors import ValidationFailed
from personae.personas.cards import import_card
from personae.personas.schema import ID_MAX_LENGTH, NAME_PATTERN, id_from_name
from personae.personas.transfer import import_bytes
from personae.personas.validation import in_namespace, parse_persona
from personae.runtime import Runtime

NEMO = "Captain Nemo of the Nautilus, Master of the Twenty Thousand Leagues"
NEMO_SLUG = "captain-nemo-of-the-nautilus-master-of-the-twenty-thousand-leagues"
NEMO_CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
             "data": {"name": NEMO, "description": "Commander of the Nautilus.",
                      "first_mes": "Welcome aboard."}}


def _fits(persona_id: str) -> bool:
    name = persona_id.rpartition("/")[2]
    return (len(persona_id) <= ID_MAX_LENGTH and not name.endswith("-")
            and re.fullmatch(NAME_PATTERN, name) is not None)


@pytest.mark.parametrize("namespace", [None, "local", "alice", "a" * 32])
def test_a_long_name_is_cut_at_a_word_to_fit_the_namespace(namespace: str | None) -> None:
    slug = id_from_name(NEMO, namespace)
    full = f"{namespace}/{slug}" if namespace else slug
    assert _fits(full), full
    assert NEMO_SLUG.startswith(slug + "-")  # whole words, in order, none of them cut
    next_word = NEMO_SLUG[len(slug) + 1:].split("-")[0]
    assert len(full) + 1 + len(next_word) > ID_MAX_LENGTH  # no word more would have fitted


def test_a_short_name_is_its_whole_slug_and_a_word_longer_than_the_room_is_cut() -> None:
    assert id_from_name("Sam Lee", "local") == "sam-lee"
    assert id_from_name("Ünïcode Näme") == "unicode-name"
    assert id_from_name("★★") == ""
    word = "w" * 80
    assert id_from_name(word, "local") == "w" * (ID_MAX_LENGTH - len("local/"))
    assert id_from_name(f"{word} tail") == "w" * ID_MAX_LENGTH


def test_a_persona_with_no_id_gets_one_from_its_name_that_fits_the_namespace() -> None:
    parsed = parse_persona({"name": NEMO})
    assert parsed.name == NEMO
    placed = in_namespace(parsed, "local")
    assert placed.id == f"local/{id_from_name(NEMO, 'local')}"
    assert placed.name == NEMO  # the name itself is kept whole
    assert in_namespace(parse_persona({"name": NEMO}), None).id == id_from_name(NEMO)


def test_a_chosen_id_that_is_too_long_is_still_refused_naming_the_field() -> None:
    chosen = parse_persona({"id": "captain-nemo-of-the-nautilus-master-of-the-twenty-thousands",
                            "name": NEMO})
    with pytest.raises(ValidationFailed) as refused:
        in_namespace(chosen, "local")
    assert [issue.path for issue in refused.value.issues] == ["id"]
    assert "longer than 64 characters" in refused.value.message


def test_a_long_named_card_imports_with_an_id_that_fits() -> None:
    definition = import_card(json.dumps(NEMO_CARD).encode()).definition
    assert definition.name == NEMO
    assert _fits(in_namespace(definition, "local").id)
    assert _fits(in_namespace(definition, "a" * 32).id)


def test_a_card_given_an_id_keeps_it_and_a_nameless_slug_falls_back() -> None:
    chosen = import_card(json.dumps(NEMO_CARD).encode(), persona_id="nemo").definition
    assert in_namespace(chosen, "local").id == "local/nemo"
    starry = {**NEMO_CARD, "data": {**NEMO_CARD["data"], "name": "★★"}}
    assert import_card(json.dumps(starry).encode()).definition.id == "character"
    too_long = "n" * 60
    imported = import_bytes(json.dumps(NEMO_CARD).encode(), "nemo.json", persona_id=too_long)
    with pytest.raises(ValidationFailed, match="longer than 64 characters"):
        in_namespace(imported.definitions[0], "local")


def test_a_persona_file_without_an_id_imports_with_one_that_fits() -> None:
    imported = import_bytes(json.dumps({"name": NEMO}).encode(), "nemo.json")
    assert _fits(in_namespace(imported.definitions[0], "alice").id)


async def test_creating_and_importing_long_named_personas_in_a_namespace(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    created = await runtime.personas.create(alice, {"name": NEMO})
    assert created.id == f"alice/{id_from_name(NEMO, 'alice')}"
    assert created.definition.name == NEMO
    imported = import_bytes(json.dumps(NEMO_CARD).encode(), "nemo.json", persona_id="nemo-2")
    (record,) = await runtime.personas.create_many(alice, imported.definitions)
    assert record.id == "alice/nemo-2"
    again = import_bytes(json.dumps(NEMO_CARD).encode(), "nemo.json")
    (card,) = await runtime.personas.create_many(people["bob"], again.definitions)
    assert card.id == f"bob/{id_from_name(NEMO, 'bob')}" and _fits(card.id)
