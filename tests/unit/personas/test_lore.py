"""Lore selection: which lore entries fire for a turn, in what order, within what budget."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from personae.errors import ValidationFailed
from personae.personas.knowledge import KnowledgeIndex
from personae.personas.lore import Lorebook
from personae.personas.schema import KnowledgeItem, LorebookSettings
from personae.personas.validation import parse_persona
from personae.providers.base import approximate_tokens


def item(content: str, **fields: Any) -> KnowledgeItem:
    return KnowledgeItem(content=content, **fields)


def book(*items: KnowledgeItem, char: str = "Wren", **settings: Any) -> Lorebook:
    return Lorebook.compile(list(items), LorebookSettings(**settings), char)


def fired(lore: Lorebook, *messages: str, user: str = "User") -> list[str]:
    return [f.text for f in lore.select(list(messages), approximate_tokens, user)]


def test_a_key_fires_as_a_case_insensitive_substring() -> None:
    lore = book(item("LANTERN", keys=["Lantern"]), item("KRAKEN", keys=["kraken"]))
    assert fired(lore, "the LANTERNS are lit") == ["LANTERN"]
    assert fired(lore, "calm night") == []


def test_case_sensitive_and_whole_word_keys() -> None:
    lore = book(item("CASE", keys=["Wick"], case_sensitive=True),
                item("WORD", keys=["oil"], whole_words=True))
    assert fired(lore, "a wick") == []
    assert fired(lore, "the Wick") == ["CASE"]
    assert fired(lore, "boiling water") == []
    assert fired(lore, "Oil, please.") == ["WORD"]


def test_constant_entries_always_fire_and_disabled_ones_never() -> None:
    lore = book(item("ALWAYS", constant=True), item("OFF", keys=["sea"], enabled=False),
                item("OFF-CONSTANT", constant=True, enabled=False))
    assert fired(lore, "the sea") == ["ALWAYS"]
    assert fired(lore) == ["ALWAYS"]


@pytest.mark.parametrize(("logic", "text", "fires"), [
    ("and_any", "storm and a ship", True), ("and_any", "storm alone", False),
    ("and_all", "storm, ship, boat", True), ("and_all", "storm and a ship", False),
    ("not_any", "storm alone", True), ("not_any", "storm and a boat", False),
    ("not_all", "storm and a ship", True), ("not_all", "storm, ship, boat", False),
])
def test_secondary_logic_filters_a_selective_entry(logic: str, text: str, fires: bool) -> None:
    lore = book(item("STORM", keys=["storm"], secondary_keys=["ship", "boat"],
                     selective=True, secondary_logic=logic))
    assert fired(lore, text) == (["STORM"] if fires else [])


def test_secondary_keys_are_ignored_unless_selective() -> None:
    lore = book(item("STORM", keys=["storm"], secondary_keys=["ship"]))
    assert fired(lore, "storm alone") == ["STORM"]


def test_scan_depth_counts_recent_messages_and_zero_leaves_constants_only() -> None:
    entries = (item("OLD", keys=["lantern"]), item("ALWAYS", constant=True))
    history = ("the lantern?", "yes", "and then")
    assert fired(book(*entries, scan_depth=3), *history) == ["OLD", "ALWAYS"]
    assert fired(book(*entries, scan_depth=2), *history) == ["ALWAYS"]
    assert fired(book(*entries, scan_depth=0), "lantern") == ["ALWAYS"]


def test_entries_are_placed_before_char_first_then_in_order() -> None:
    lore = book(item("AFTER-20", keys=["x"], order=20), item("AFTER-10", keys=["x"], order=10),
                item("BEFORE-50", keys=["x"], order=50, position="before_char"))
    assert fired(lore, "x") == ["BEFORE-50", "AFTER-10", "AFTER-20"]


def test_the_budget_keeps_higher_priority_first_and_places_in_order() -> None:
    words = "word " * 40  # about 50 tokens each
    lore = book(item(f"LOW {words}", keys=["x"], order=1, priority=0),
                item(f"HIGH {words}", keys=["x"], order=3, priority=9),
                item(f"MID {words}", keys=["x"], order=2, priority=5), token_budget=110)
    assert [text.split()[0] for text in fired(lore, "x")] == ["MID", "HIGH"]


def test_an_entry_too_big_for_the_budget_leaves_room_for_smaller_ones() -> None:
    lore = book(item("BIG " + "word " * 200, keys=["x"], priority=9),
                item("SMALL", keys=["x"]), token_budget=50)
    assert fired(lore, "x") == ["SMALL"]


def test_recursive_scanning_lets_fired_entries_trigger_others() -> None:
    entries = (item("The keeper has a KRAKEN story.", keys=["keeper"]),
               item("KRAKEN-FACT", keys=["kraken"]),
               item("DEEPER", keys=["kraken-fact"]))
    assert fired(book(*entries), "the keeper") == ["The keeper has a KRAKEN story."]
    lore = book(*entries, recursive_scanning=True)
    chosen = lore.select(["the keeper"], approximate_tokens, "User")
    assert [(f.text, f.why) for f in chosen] == [
        ("The keeper has a KRAKEN story.", "key"), ("KRAKEN-FACT", "recursion"),
        ("DEEPER", "recursion")]


def test_regex_keys_match_with_their_flags() -> None:
    lore = book(item("GULL", keys=["/gulls?\\b/i"]), item("EXACT", keys=["/^Tide$/m"]))
    assert fired(lore, "GULLS overhead") == ["GULL"]
    assert fired(lore, "gullible") == []
    assert fired(lore, "low\nTide\nnow") == ["EXACT"]


def test_a_catastrophic_regex_times_out_as_no_match_and_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    lore = book(item("SLOW", keys=["/(a|aa)+$/"]), item("FAST", keys=["a"]))
    text = "a" * 60 + "!"
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, "personae.personas.lore"):
        assert fired(lore, text) == ["FAST"]
        assert fired(lore, text) == ["FAST"]
    assert time.perf_counter() - started < 5  # one timeout (0.05 s), never the backtracking
    assert sum("took longer" in r.message for r in caplog.records) == 1


def test_a_scan_stops_at_its_bound_however_many_slow_keys_there_are(
        caplog: pytest.LogCaptureFixture) -> None:
    slow = [item(f"SLOW-{i}", keys=[f"/(a|aa)+${i}/"]) for i in range(200)]
    lore = book(*slow)
    started = time.thread_time()  # this thread's CPU: a loaded machine does not fail it
    with caplog.at_level(logging.WARNING, "personae.personas.lore"):
        assert fired(lore, "a" * 60 + "!") == []
    # 200 keys at 0.05 s each would be 10 s; the whole scan is bounded at 0.5 s.
    assert time.thread_time() - started < 3
    assert any("lore scan stopped" in r.message for r in caplog.records)


def test_regex_keys_are_counted_before_any_is_compiled() -> None:
    items = [{"content": f"entry {i}", "keys": [f"/x{i}(a|b)/", f"/y{i}/"]} for i in range(501)]
    started = time.thread_time()
    with pytest.raises(ValidationFailed) as caught:
        parse_persona({"id": "many", "name": "Many", "knowledge": items})
    assert "1,002 regular-expression keys" in caught.value.message
    assert time.thread_time() - started < 0.5  # refused without compiling 1,002 patterns


def test_macros_in_keys_and_contents() -> None:
    lore = book(item("{{char}} greets {{user}}.", keys=["{{char}}"]), char="Wren")
    assert fired(lore, "hello wren", user="Ana") == ["Wren greets Ana."]


def test_why_each_entry_fired_is_reported() -> None:
    lore = book(item("A", keys=["lamp"], id="lamp-entry"), item("B", constant=True, title="Isle"))
    meta = [f.meta() for f in lore.select(["the lamp"], approximate_tokens, "User")]
    assert meta == [{"label": "lamp-entry", "index": 0, "why": "key", "key": "lamp"},
                    {"label": "Isle", "index": 1, "why": "constant"}]


def test_lore_entries_are_not_retrieved_by_bm25() -> None:
    items = [item("The lantern burns whale oil.", keys=["lantern"]),
             item("The lantern is cleaned weekly.", title="Cleaning"),
             item("Lantern lore for the lantern.", constant=True)]
    ranked = KnowledgeIndex(items).top("lantern")
    assert [(r.index, r.label) for r in ranked] == [(1, "Cleaning")]


def test_an_invalid_regex_key_is_a_field_error() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_persona({"id": "w", "name": "W", "knowledge": [
            {"content": "x", "keys": ["fine", "/(unclosed/"]}]})
    (issue,) = caught.value.issues
    assert issue.path == "knowledge[0].keys"
    assert "not a valid regular expression" in issue.message


def test_lore_fields_are_bounded() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_persona({"id": "w", "name": "W", "knowledge": [
            {"content": "x", "keys": ["k"] * 101}, {"content": "y", "keys": ["k" * 501]}],
            "lorebook": {"scan_depth": 101, "token_budget": 0}})
    fields = {issue.path for issue in caught.value.issues}
    assert fields == {"knowledge[0].keys", "knowledge[1].keys[0]", "lorebook.scan_depth",
                      "lorebook.token_budget"}
