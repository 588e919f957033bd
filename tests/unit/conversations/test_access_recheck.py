"""Access is checked on every turn: a persona its owner made private stops answering
another user's open session, and that session is closed."""

from __future__ import annotations

import pytest

from personae.conversations.events import Done, LiveError, LiveEvent
from personae.conversations.gateway import ChatRequest
from personae.conversations.live import LiveConversation
from personae.errors import Conflict, NotFound
from personae.personas.schema import Visibility
from personae.providers.base import ChatMessage
from tests.support.chat import Chat

SHARED = {"id": "oracle", "name": "Oracle", "language": "en", "greetings": ["Ask away."]}


async def _shared_persona(chat: Chat) -> str:
    """Alice's public persona; returns its id."""
    record = await chat.runtime.personas.create(chat.alice, SHARED,
                                                visibility=Visibility.public)
    return record.id


async def _make_private(chat: Chat, persona_id: str) -> None:
    personas = chat.runtime.personas
    current = (await personas.get(chat.alice, persona_id)).record
    await personas.patch(chat.alice, persona_id, {}, base_version=current.version,
                         visibility=Visibility.private)


async def _bobs_session(chat: Chat, persona_id: str) -> str:
    session, _ = await chat.runtime.conversations.open(chat.bob, persona_id)
    events = await chat.runtime.conversations.send(chat.bob, session.id, "hello")
    assert isinstance([e async for e in events][-1], Done)  # it answered while public
    return session.id


async def test_a_turn_after_the_persona_turned_private_fails_and_closes(chat: Chat) -> None:
    persona_id = await _shared_persona(chat)
    session_id = await _bobs_session(chat, persona_id)
    await _make_private(chat, persona_id)
    calls = len(chat.server.requests)

    with pytest.raises(NotFound, match="no longer available to you; this session is closed"):
        await chat.runtime.conversations.send(chat.bob, session_id, "still there?")

    conversations = chat.runtime.conversations
    session = await conversations.get(chat.bob, session_id)  # its owner still sees it
    assert session.status == "closed"
    history = await conversations.history(chat.bob, session_id)
    assert [m.content for m in history] == ["Ask away.", "hello", history[-1].content]
    assert len(chat.server.requests) == calls  # the model was never asked
    with pytest.raises(Conflict, match="is closed"):
        await conversations.send(chat.bob, session_id, "and now?")


async def test_switch_is_refused_once_the_persona_is_private(chat: Chat) -> None:
    persona_id = await _shared_persona(chat)
    session_id = await _bobs_session(chat, persona_id)
    await _make_private(chat, persona_id)
    with pytest.raises(NotFound, match=f"persona '{persona_id}' is no longer available"):
        await chat.runtime.conversations.switch(chat.bob, session_id, "mohit")
    session = await chat.runtime.conversations.get(chat.bob, session_id)
    assert (session.status, session.persona_id) == ("closed", persona_id)


async def test_the_owner_keeps_talking_to_a_private_persona(chat: Chat) -> None:
    persona_id = await _shared_persona(chat)
    session, _ = await chat.runtime.conversations.open(chat.alice, persona_id)
    await _make_private(chat, persona_id)
    events = await chat.runtime.conversations.send(chat.alice, session.id, "hi")
    assert isinstance([e async for e in events][-1], Done)


async def test_a_live_conversation_reports_the_lost_access_as_an_error(chat: Chat) -> None:
    persona_id = await _shared_persona(chat)
    session_id = await _bobs_session(chat, persona_id)
    await _make_private(chat, persona_id)
    emitted: list[LiveEvent] = []

    async def emit(event: LiveEvent) -> None:
        emitted.append(event)

    live = LiveConversation(chat.runtime.conversations, chat.bob, session_id, emit)
    await live.request(live.say("hello again"))
    (error,) = emitted
    assert isinstance(error, LiveError)
    assert error.error.status == 404
    assert "this session is closed" in error.error.message


async def test_the_gateway_session_mode_fails_the_same_way(chat: Chat) -> None:
    persona_id = await _shared_persona(chat)
    session_id = await _bobs_session(chat, persona_id)
    await _make_private(chat, persona_id)
    request = ChatRequest(model=persona_id, messages=(ChatMessage("user", "hi"),),
                          session_id=session_id)
    with pytest.raises(NotFound, match="no longer available to you"):
        await chat.runtime.gateway.complete(chat.bob, request)
    assert (await chat.runtime.conversations.get(chat.bob, session_id)).status == "closed"
