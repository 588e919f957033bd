"""Lorebooks: World Info files and character_books read as lore, cards mapped and exported."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from personae.errors import InvalidInput
from personae.personas.card_export import card_from_persona, card_v2_from_persona
from personae.personas.cards import import_card
from personae.personas.lorebook import lorebook_kind, read_lorebook
from personae.personas.lorebook_attach import lore_from_bytes, with_lore
from personae.personas.schema import KnowledgeItem
from personae.personas.transfer import import_bytes
from personae.personas.validation import parse_persona
from tests.support.lore import CARD, CHARACTER_BOOK, WORLD_INFO, card


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode()


def lore_of(items: list[dict[str, Any]]) -> list[KnowledgeItem]:
    return [KnowledgeItem.model_validate(item) for item in items]


def test_both_shapes_are_recognised() -> None:
    assert lorebook_kind(WORLD_INFO) == "world-info"
    assert lorebook_kind(CHARACTER_BOOK) == "character-book"
    assert lorebook_kind({"entries": []}) == "character-book"
    assert lorebook_kind({"name": "A persona"}) is None
    assert lorebook_kind(CARD) is None


def test_world_info_entries_keep_their_semantics() -> None:
    lore = read_lorebook(WORLD_INFO, "skerra.json")
    assert lore.kind == "world-info"
    assert lore.settings == {"name": "skerra"}
    items = {item.title: item for item in lore_of(lore.items)}
    assert set(items) == {"The lantern", "The isle", "Switched off", "Storm with a ship", "Gulls"}
    assert items["The lantern"].keys == ["lantern"]
    assert items["The lantern"].order == 10
    assert items["The isle"].constant and items["The isle"].position == "before_char"
    assert not items["Switched off"].enabled
    storm = items["Storm with a ship"]
    assert (storm.selective, storm.secondary_keys, storm.secondary_logic) == \
        (True, ["ship", "boat"], "and_any")
    assert storm.extensions["position"] == 4  # at a chat depth: kept, not applied
    assert storm.extensions["group"] == "weather"
    assert items["Gulls"].keys == ["/gull(s)?\\b/i"]
    assert items["The lantern"].id == "0"


def test_what_is_kept_but_not_used_is_reported_once_per_kind() -> None:
    lore = read_lorebook(WORLD_INFO, "skerra.json")
    assert lore.warnings == [
        "lorebook: 1 entry is placed at a chat depth, in the author's note or around the "
        "examples; placed after the character instead",
        "lorebook: 1 entry has a trigger probability below 100%; they fire every time",
        "lorebook: 1 entry belongs to inclusion groups; groups are not applied"]


def test_a_bare_character_book_with_options_and_decorators() -> None:
    lore = read_lorebook(CHARACTER_BOOK)
    assert lore.settings == {"name": "Skerra lore", "scan_depth": 3, "token_budget": 400,
                             "recursive_scanning": False,
                             "extensions": {"description": "What Wren knows."}}
    tale = lore_of(lore.items)[3]
    assert tale.content == "Old keepers' tale; TALE-FACT."
    assert tale.extensions == {"ccv3_decorators": ["@@depth 4"]}
    assert (tale.secondary_logic, tale.whole_words, tale.enabled) == ("and_all", True, False)
    assert "lorebook: 1 entry carries decorators (@@ lines); kept, not applied" in lore.warnings


def test_v3_regex_keys_become_slash_keys_and_bad_ones_are_dropped() -> None:
    book = {"entries": [{"keys": ["gulls?", "(broken"], "content": "GULL", "use_regex": True},
                        {"keys": ["/fine/", "/(bad/"], "content": "OTHER"}]}
    lore = read_lorebook(book)
    assert [item["keys"] for item in lore.items] == [["/gulls?/"], ["/fine/"]]
    assert "lorebook: 2 keys are not valid regular expressions; left out (they could " \
        "never match)" in lore.warnings


def test_bounds_and_odd_entries() -> None:
    with pytest.raises(InvalidInput, match="at most 5000"):
        read_lorebook({"entries": [{"keys": ["k"], "content": "c"}] * 5001})
    with pytest.raises(InvalidInput, match="at most 100"):
        read_lorebook({"entries": [{"keys": [f"k{i}" for i in range(101)], "content": "c"}]})
    with pytest.raises(InvalidInput, match="longer than 500"):
        read_lorebook({"entries": [{"keys": ["k" * 501], "content": "c"}]})
    lore = read_lorebook({"entries": [{"keys": "a, b", "content": "split"},
                                      {"keys": ["x"], "content": "  "},
                                      {"keys": [], "content": "no keys"}],
                          "scan_depth": 1000})
    assert [item["keys"] for item in lore.items] == [["a", "b"], []]
    assert lore.settings["scan_depth"] == 100
    assert {"lorebook: 1 entry with no content was left out",
            "lorebook: 1 entry has no keys and is not constant; kept as plain "
            "knowledge, retrieved when relevant",
            "lorebook: scan_depth out of range; clamped"} <= set(lore.warnings)


def test_a_card_maps_its_lorebook_post_history_and_greetings() -> None:
    result = import_card(as_json(CARD))
    persona = result.definition
    lore = [item for item in persona.knowledge if item.is_lore]
    assert [item.title for item in lore] == ["Lantern", "Isle", "Kraken", "Tale"]
    assert (lore[0].keys, lore[0].order, lore[0].priority) == (["lantern", "lamp"], 20, 5)
    assert lore[1].constant and lore[1].position == "before_char"
    assert persona.lorebook.scan_depth == 3 and persona.lorebook.token_budget == 400
    assert persona.post_history_instructions.startswith("Stay in character as {{char}}")
    assert persona.greetings == ["Dry off by the stove, {{user}}. I am {{char}}."]
    assert persona.example_dialogues[0].user == "Is it always this cold?"
    assert persona.example_dialogues[0].reply == "Always.\nThe sea sees to that."
    assert any(w.startswith("data.extensions.depth_prompt") for w in result.warnings)
    assert "data.extensions.regex_scripts (1 script(s)): kept in the card, not used in " \
        "conversations" in result.warnings


def test_a_v3_nickname_is_reported_as_kept_but_not_used() -> None:
    card = {"spec": "chara_card_v3", "spec_version": "3.0",
            "data": {**CARD["data"], "nickname": "Keeper"}}
    warnings = import_card(as_json(card)).warnings
    assert "data.nickname ({{char}} is the card's name): kept in the card, not used in " \
        "conversations" in warnings


def test_an_unedited_card_still_exports_verbatim() -> None:
    persona = import_card(as_json(CARD)).definition
    assert card_v2_from_persona(persona) == CARD


def test_an_edited_lorebook_is_exported_as_a_character_book() -> None:
    persona = import_card(as_json(CARD)).definition
    data = persona.model_dump(mode="json")
    data["knowledge"][2]["content"] = "The kraken is a myth; KRAKEN-FACT."
    data["knowledge"].append({"content": "A plain note.", "title": "Note"})
    data["post_history_instructions"] = "Short answers."
    exported = card_v2_from_persona(parse_persona(data))["data"]
    book = exported["character_book"]
    assert [e["content"] for e in book["entries"]][2] == "The kraken is a myth; KRAKEN-FACT."
    assert book["entries"][3]["content"].startswith("Old keepers' tale")  # V2: no decorators
    assert book["entries"][3]["extensions"]["ccv3_decorators"] == ["@@depth 4"]
    assert book["entries"][3]["extensions"]["selectiveLogic"] == 3
    assert (book["scan_depth"], book["token_budget"], book["description"]) == \
        (3, 400, "What Wren knows.")
    assert exported["post_history_instructions"] == "Short answers."
    assert exported["extensions"]["personae"]["knowledge"] == [
        {"title": "Note", "content": "A plain note."}]
    again = import_card(as_json(card_from_persona(parse_persona(data)))).definition
    plain_first = sorted(parse_persona(data).knowledge, key=lambda item: item.is_lore)
    assert again.knowledge == plain_first  # a card holds lore and plain items apart


def test_a_native_persona_with_lore_round_trips_through_a_card() -> None:
    persona = parse_persona({"id": "wren", "name": "Wren", "knowledge": [
        {"content": "plain", "title": "P"},
        {"content": "lore", "keys": ["lamp"], "secondary_keys": ["oil"], "selective": True,
         "secondary_logic": "not_any", "whole_words": True, "order": 3}],
        "lorebook": {"token_budget": 100}})
    exported = card_from_persona(persona)
    assert [e["keys"] for e in exported["data"]["character_book"]["entries"]] == [["lamp"]]
    again = import_card(as_json(exported), persona_id="wren").definition
    assert again.knowledge == persona.knowledge and again.lorebook == persona.lorebook
    without = card_from_persona(parse_persona({"id": "p", "name": "P"}))
    assert "character_book" not in without["data"]


def test_a_lorebook_imported_as_a_persona_says_what_it_is() -> None:
    with pytest.raises(InvalidInput) as caught:
        import_bytes(as_json(WORLD_INFO), "skerra.json")
    assert "lorebook (SillyTavern World Info)" in caught.value.message
    assert "personae personas import-lorebook FILE --to ID" in caught.value.message
    assert "POST /v1/personas/{id}/lorebook" in caught.value.message


def test_a_persona_or_card_is_not_a_lorebook() -> None:
    with pytest.raises(InvalidInput, match="persona file, not a lorebook"):
        lore_from_bytes(as_json({"id": "x", "name": "X"}))
    with pytest.raises(InvalidInput, match="Character Card, not a lorebook"):
        lore_from_bytes(as_json(CARD))
    with pytest.raises(InvalidInput, match="not a lorebook"):
        lore_from_bytes(b"\x89PNG....")


def test_attaching_appends_or_replaces_lore_and_keeps_plain_knowledge() -> None:
    persona = import_card(as_json(card(character_book=None)), persona_id="wren").definition
    persona = parse_persona({**persona.to_data(), "knowledge": [
        {"content": "plain"}, {"content": "old lore", "keys": ["old"]}]})
    lore = read_lorebook(copy.deepcopy(CHARACTER_BOOK))
    appended = parse_persona(with_lore(persona, lore, "append"))
    assert [k.content for k in appended.knowledge][:2] == ["plain", "old lore"]
    assert len(appended.knowledge) == 6
    assert appended.lorebook.token_budget == 400
    replaced = parse_persona(with_lore(persona, lore, "replace"))
    assert replaced.knowledge[0].content == "plain"
    assert "old lore" not in [k.content for k in replaced.knowledge]
