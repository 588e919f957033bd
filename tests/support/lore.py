"""Lorebooks and a card that uses one, written for these tests (no third-party data).

The world: Wren, a lighthouse keeper on the isle of Skerra. Entries are told apart by
a word only they hold, so a test can see which ones reached the prompt.
"""

from __future__ import annotations

import copy
from typing import Any

# A SillyTavern World Info file (entries keyed by uid, as the app saves them).
WORLD_INFO: dict[str, Any] = {"entries": {
    "0": {"uid": 0, "key": ["lantern"], "keysecondary": [], "comment": "The lantern",
          "content": "The lantern burns whale oil; LANTERN-FACT.", "constant": False,
          "selective": False, "selectiveLogic": 0, "order": 10, "position": 1,
          "disable": False, "probability": 100, "useProbability": True, "depth": 4},
    "1": {"uid": 1, "key": [], "keysecondary": [], "comment": "The isle",
          "content": "Skerra is a bare rock in a cold sea; ISLE-FACT.", "constant": True,
          "selective": False, "selectiveLogic": 0, "order": 1, "position": 0,
          "disable": False},
    "2": {"uid": 2, "key": ["lantern"], "keysecondary": [], "comment": "Switched off",
          "content": "DISABLED-FACT.", "constant": False, "selective": False,
          "selectiveLogic": 0, "order": 5, "position": 1, "disable": True},
    "3": {"uid": 3, "key": ["storm"], "keysecondary": ["ship", "boat"],
          "comment": "Storm with a ship", "content": "Wren lights the second lamp; "
          "STORM-FACT.", "constant": False, "selective": True, "selectiveLogic": 0,
          "order": 20, "position": 4, "depth": 2, "disable": False, "group": "weather",
          "probability": 50, "useProbability": True},
    "4": {"uid": 4, "key": ["/gull(s)?\\b/i"], "keysecondary": [], "comment": "Gulls",
          "content": "The gulls nest under the gallery; GULL-FACT.", "constant": False,
          "selective": False, "selectiveLogic": 0, "order": 30, "position": 1,
          "disable": False, "matchWholeWords": None, "caseSensitive": None},
}}

# The same kind of book as a card's character_book (V2 entries), with settings.
CHARACTER_BOOK: dict[str, Any] = {
    "name": "Skerra lore", "description": "What Wren knows.", "scan_depth": 3,
    "token_budget": 400, "recursive_scanning": False, "extensions": {},
    "entries": [
        {"id": 1, "keys": ["lantern", "lamp"], "content": "{{char}} trims the wick at dusk "
         "for {{user}}; LANTERN-FACT.", "extensions": {"position": 1}, "enabled": True,
         "insertion_order": 20, "name": "Lantern", "priority": 5, "selective": False,
         "secondary_keys": [], "constant": False, "position": "after_char"},
        {"id": 2, "keys": [], "content": "Skerra lies far north; ISLE-FACT.",
         "extensions": {"position": 0}, "enabled": True, "insertion_order": 5,
         "name": "Isle", "priority": 10, "constant": True, "position": "before_char"},
        {"id": 3, "keys": ["kraken"], "content": "Sailors fear the kraken; KRAKEN-FACT.",
         "extensions": {}, "enabled": True, "insertion_order": 30, "name": "Kraken",
         "constant": False, "position": "after_char"},
        {"id": 4, "keys": ["lantern"], "content": "@@depth 4\nOld keepers' tale; TALE-FACT.",
         "extensions": {"selectiveLogic": 3, "match_whole_words": True}, "enabled": False,
         "insertion_order": 40, "name": "Tale", "selective": True,
         "secondary_keys": ["old", "tale"], "constant": False, "position": "after_char"},
    ],
}

CARD: dict[str, Any] = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {
        "name": "Wren", "description": "{{char}} keeps the light on Skerra.",
        "personality": "quiet, exact", "scenario": "{{user}} is a stranded sailor.",
        "first_mes": "", "alternate_greetings": ["Dry off by the stove, {{user}}. I am {{char}}."],
        "mes_example": "<START>\nYou: Is it always this cold?\nWren: Always.\n"
                       "The sea sees to that.\n<START>\n{{user}}: Who are you?\n"
                       "{{char}}: The keeper.",
        "creator_notes": "", "system_prompt": "Speak as {{char}}, briefly.\n{{original}}",
        "post_history_instructions": "Stay in character as {{char}}; address {{user}} by name.",
        "tags": ["lighthouse"], "creator": "tests", "character_version": "1",
        "character_book": CHARACTER_BOOK,
        "extensions": {"depth_prompt": {"prompt": "Salt in the air.", "depth": 4},
                       "regex_scripts": [{"scriptName": "trim", "findRegex": "x"}]},
    },
}


def card(**changes: Any) -> dict[str, Any]:
    """A copy of CARD with data fields changed."""
    copied = copy.deepcopy(CARD)
    copied["data"].update(changes)
    return copied
