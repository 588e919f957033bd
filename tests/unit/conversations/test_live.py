"""A live conversation: one turn at a time, interruption, switching, going away."""

from __future__ import annotations

import asyncio

from personae.conversations.events import (
    Delta,
    Done,
    Interrupted,
    LiveError,
    LiveEvent,
    MessageSaved,
    PersonaSwitched,
    event_dict,
)
from personae.conversations.live import LiveConversation
from tests.support.chat import Chat

LONG = " ".join(f"word{i}" for i in range(200))


class Client:
    """Collects what a live conversation emits, and waits for events of a kind."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self._changed = asyncio.Condition()

    async def emit(self, event: LiveEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait_for(self, kind: type, count: int = 1) -> list[LiveEvent]:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(
                lambda: len([e for e in self.events if isinstance(e, kind)]) >= count)
        return [e for e in self.events if isinstance(e, kind)]


async def _live(chat: Chat, persona: str = "mohit") -> tuple[LiveConversation, Client]:
    session, _ = await chat.runtime.conversations.open(chat.alice, persona)
    client = Client()
    return LiveConversation(chat.runtime.conversations, chat.alice, session.id,
                            client.emit), client


async def _telling_a_long_story(chat: Chat) -> tuple[LiveConversation, Client]:
    """A live conversation whose reply streams slowly, for long enough to step in."""
    chat.server.reply = lambda _body: LONG
    chat.server.token_delay = 0.02
    live, client = await _live(chat)
    await live.say("tell me a long story")
    return live, client


async def test_a_turn_streams_through_emit(chat: Chat) -> None:
    live, client = await _live(chat)
    await live.say("hello there")
    (done,) = await client.wait_for(Done)
    assert isinstance(done, Done) and done.message.status == "complete"
    kinds = [type(e) for e in client.events]
    assert kinds[0] is MessageSaved and Delta in kinds and kinds[-1] is Done
    assert not live.answering
    await live.say("and again")  # the session was released: no conflict
    await client.wait_for(Done, 2)


async def test_a_second_message_while_answering_is_refused(chat: Chat) -> None:
    live, client = await _telling_a_long_story(chat)
    await client.wait_for(Delta)
    await live.request(live.say("and another thing"))
    (refused,) = await client.wait_for(LiveError)
    assert isinstance(refused, LiveError) and refused.error.code == "turn_in_progress"
    assert event_dict(refused)["error"]["status"] == 409
    await live.close()


async def test_interrupt_keeps_the_partial_reply(chat: Chat) -> None:
    live, client = await _telling_a_long_story(chat)
    await client.wait_for(Delta, 3)
    assert await live.interrupt() is True
    (stopped,) = await client.wait_for(Interrupted)
    assert isinstance(stopped, Interrupted) and stopped.message is not None
    assert stopped.message.status == "interrupted"
    assert stopped.message.content and stopped.message.content != LONG
    assert not any(isinstance(e, Done) for e in client.events)
    history = await chat.runtime.conversations.history(chat.alice, live.session_id)
    assert history[-1].id == stopped.message.id
    assert await live.interrupt() is False  # nothing left to stop
    chat.server.token_delay = 0.0
    await live.say("shorter, please")  # the interrupted turn let go of the session
    (done,) = await client.wait_for(Done)
    assert isinstance(done, Done) and done.message.status == "complete"


async def test_closing_mid_reply_saves_it_as_interrupted(chat: Chat) -> None:
    live, client = await _telling_a_long_story(chat)
    await client.wait_for(Delta, 2)
    await live.close()
    history = await chat.runtime.conversations.history(chat.alice, live.session_id)
    assert history[-1].role == "assistant" and history[-1].status == "interrupted"
    session = await chat.runtime.conversations.get(chat.alice, live.session_id)
    again = await chat.runtime.conversations.send(chat.alice, session.id, "still there?")
    assert isinstance([e async for e in again][-1], Done)


async def test_switch_emits_the_new_persona_and_its_greeting(chat: Chat) -> None:
    live, client = await _live(chat)
    await live.switch("tina")
    (switched,) = await client.wait_for(PersonaSwitched)
    assert isinstance(switched, PersonaSwitched) and switched.persona_id == "tina"
    saved = [e for e in client.events if isinstance(e, MessageSaved)]
    assert saved[-1].message.content == "नमस्ते, मैं तीना हूं।"


async def test_errors_reach_the_client_not_the_transport(chat: Chat) -> None:
    live, client = await _live(chat)
    await live.request(live.switch("no-such-persona"))
    await live.request(live.say("   "))
    errors = await client.wait_for(LiveError, 2)
    assert [e.error.code for e in errors if isinstance(e, LiveError)] == [
        "not_found", "invalid_input"]


async def test_another_users_session_is_not_found(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "mohit")
    client = Client()
    live = LiveConversation(chat.runtime.conversations, chat.bob, session.id, client.emit)
    await live.request(live.say("let me in"))
    (error,) = await client.wait_for(LiveError)
    assert isinstance(error, LiveError) and error.error.code == "not_found"
