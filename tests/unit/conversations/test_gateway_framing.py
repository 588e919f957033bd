"""The gateway's stateless path: the persona's messages around the client's."""

from __future__ import annotations

import pytest

from personae.conversations.gateway import ChatRequest
from personae.providers.base import ChatMessage, TextDelta
from personae.providers.streams import FrameTiming
from tests.unit.conversations.conftest import Harness


@pytest.fixture
def harness(scripted: Harness) -> Harness:
    return scripted


async def test_the_stateless_framing_follows_the_user_name_and_the_version(
        harness: Harness) -> None:
    """Without lore, the persona's messages are built once per version and user name:
    each caller still gets their own name, and an edit is used at once."""
    plain = {"id": "plain", "name": "Plain", "system_prompt": "Greet {{user}} warmly.",
             "post_history_instructions": "Call {{user}} by name."}
    created = await harness.runtime.personas.create(harness.alice, plain)

    async def framing(user_name: str | None) -> tuple[str, str]:
        request = ChatRequest(model=created.id, user_name=user_name,
                              messages=(ChatMessage("user", "hi"),))
        await harness.runtime.gateway.complete(harness.alice, request)
        system, user, after = harness.llm.last_request.messages
        assert user == ChatMessage("user", "hi")
        return system.content, after.content

    for name in ("Ana", "Bo", "Ana", None):
        system, after = await framing(name)
        assert f"Greet {name or 'User'} warmly." in system
        assert after == f"Call {name or 'User'} by name."
    await harness.runtime.personas.patch(harness.alice, created.id,
                                         {"system_prompt": "Nod at {{user}}."},
                                         base_version=created.version)
    system, _ = await framing("Ana")
    assert "Nod at Ana." in system and "Greet" not in system


async def test_the_stateless_stream_reaches_the_client_in_frames(harness: Harness) -> None:
    """A stateless streamed reply is framed like a session's: the first delta alone,
    then at most ``max_deltas`` model deltas per frame, the same text in the end."""
    harness.runtime.conversations.frames = FrameTiming(5.0, 16)
    words = [f"w{i}" for i in range(120)]
    harness.llm.queue(" ".join(words))
    created = await harness.runtime.personas.create(
        harness.alice, {"id": "chatty", "name": "Chatty", "system_prompt": "Talk."})
    request = ChatRequest(model=created.id, stream=True,
                          messages=(ChatMessage("user", "talk to me"),))
    events = await harness.runtime.gateway.stream_choices(harness.alice, request)
    texts = [event.text async for _index, event in events if isinstance(event, TextDelta)]
    assert "".join(texts) == " ".join(words)
    assert texts[0].strip() == "w0"
    assert 2 <= len(texts) <= 1 + len(words) // 16 + 1  # not one per word
