"""Every transport writes an event as the same JSON: ``event_json`` is ``event_dict``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from personae.conversations.events import (
    Delta,
    Done,
    Interrupted,
    LiveError,
    LiveEvent,
    MessageSaved,
    PersonaSwitched,
    TurnFailed,
    event_dict,
    event_json,
)
from personae.conversations.store import MessageRecord
from personae.errors import TurnInProgress

REPLY = MessageRecord(7, "s1", "assistant", 'said "hi"\nनमस्ते', "tina", 1, "complete",
                      datetime(2025, 1, 2, tzinfo=UTC), {"usage": {"total_tokens": 3}})
EVENTS: list[LiveEvent] = [
    Delta('a "quoted" line\nwith \\ and नमस्ते and \u2028 and \x00'),
    Delta(""),
    MessageSaved(REPLY),
    Done(REPLY, {"total_tokens": 3}),
    TurnFailed(TurnInProgress("busy"), REPLY),
    TurnFailed(TurnInProgress("busy")),
    LiveError(TurnInProgress("busy")),
    Interrupted(REPLY),
    Interrupted(None),
    PersonaSwitched("mohit", 2, "Mohit", "en", {"voice_id": "onyx"}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_json_is_event_dict(event: LiveEvent) -> None:
    text = event_json(event)
    assert json.loads(text) == event_dict(event)
    assert text == json.dumps(event_dict(event), ensure_ascii=False, separators=(",", ":"))
