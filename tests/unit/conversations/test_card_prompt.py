"""What the model receives for a card persona: lore, post-history instructions, macros."""

from __future__ import annotations

import json

import pytest

from personae.conversations.events import Done
from personae.conversations.gateway import ChatRequest
from personae.personas.transfer import import_bytes
from personae.providers.base import ChatMessage
from tests.support.lore import CARD
from tests.unit.conversations.conftest import Harness


@pytest.fixture
async def harness(scripted: Harness) -> Harness:
    """The scripted runtime with alice's card persona ``wren``."""
    (definition,) = import_bytes(json.dumps(CARD).encode(), "wren.json",
                                 persona_id="wren").definitions
    await scripted.runtime.personas.create(scripted.alice, definition)
    return scripted


async def _turn(harness: Harness, session_id: str, text: str) -> Done:
    events = await harness.runtime.conversations.send(harness.alice, session_id, text)
    done = [event async for event in events][-1]
    assert isinstance(done, Done)
    return done


async def test_a_session_turn_sends_lore_post_history_and_substituted_macros(
        harness: Harness) -> None:
    conversations = harness.runtime.conversations
    session, (greeting,) = await conversations.open(harness.alice, "alice/wren",
                                                    {"user_name": "Ana"})
    assert greeting.message.content == "Dry off by the stove, Ana. I am Wren."
    harness.llm.queue("It is.")
    done = await _turn(harness, session.id, "Is the lantern lit tonight?")
    messages = harness.llm.last_request.messages
    system, *middle, user, after = messages
    assert [m.role for m in messages] == ["system", "assistant", "user", "system"]
    assert (middle[0].content, user.content) == (greeting.message.content,
                                                 "Is the lantern lit tonight?")
    assert system.content.startswith("Speak as Wren, briefly.\nYou are Wren.")
    assert "Wren keeps the light on Skerra." in system.content
    assert "Scenario\nAna is a stranded sailor." in system.content
    assert "Wren trims the wick at dusk for Ana; LANTERN-FACT." in system.content  # by key
    assert system.content.index("ISLE-FACT") < system.content.index("LANTERN-FACT")
    assert "KRAKEN-FACT" not in system.content  # its key was not said
    assert "TALE-FACT" not in system.content  # disabled
    assert "{{" not in system.content and "<USER>" not in system.content
    assert after.content == "Stay in character as Wren; address Ana by name."
    assert done.message.meta["lore"] == [  # in prompt order
        {"label": "2", "index": 1, "why": "constant"},
        {"label": "1", "index": 0, "why": "key", "key": "lantern"}]


async def test_lore_follows_the_recent_messages_and_the_user_defaults_to_user(
        harness: Harness) -> None:
    conversations = harness.runtime.conversations
    session, (greeting,) = await conversations.open(harness.alice, "alice/wren")
    assert greeting.message.content == "Dry off by the stove, User. I am Wren."
    await _turn(harness, session.id, "Tell me about the kraken.")
    assert "KRAKEN-FACT" in harness.llm.last_request.messages[0].content
    for text in ("Anything else?", "Go on.", "And now?"):  # scan depth 3: it scrolls away
        await _turn(harness, session.id, text)
    system = harness.llm.last_request.messages[0].content
    assert "KRAKEN-FACT" not in system and "ISLE-FACT" in system
    assert harness.llm.last_request.messages[-1].content.endswith("address User by name.")


async def test_the_stateless_openai_path_fires_lore_and_ends_with_post_history(
        harness: Harness) -> None:
    request = ChatRequest(model="alice/wren", user_name="Ana", messages=(
        ChatMessage("user", "I saw a kraken"), ChatMessage("assistant", "Did you now."),
        ChatMessage("user", "Yes, near the lamp.")))
    await harness.runtime.gateway.complete(harness.alice, request)
    system, *client, after = harness.llm.last_request.messages
    assert tuple(client) == request.messages
    assert "KRAKEN-FACT" in system.content and "for Ana; LANTERN-FACT" in system.content
    assert after == ChatMessage("system", "Stay in character as Wren; address Ana by name.")
