"""Sessions and turns through the real engine and a loopback OpenAI-protocol model."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import pytest
import sqlalchemy as sa

from personae.conversations.events import Delta, Done, MessageSaved, PersonaSwitched, TurnFailed
from personae.errors import NotFound, TurnInProgress
from personae.runtime import Runtime
from tests.support.chat import Chat


async def _turn(chat: Chat, session_id: str, text: str, who: str = "alice") -> list:
    principal = chat.alice if who == "alice" else chat.bob
    events = await chat.runtime.conversations.send(principal, session_id, text)
    return [event async for event in events]


async def test_greeting_is_the_first_message(chat: Chat) -> None:
    session, events = await chat.runtime.conversations.open(chat.alice, "tina")
    assert session.persona_version == 1
    (greeting,) = events
    assert isinstance(greeting, MessageSaved)
    assert greeting.message.role == "assistant"
    assert greeting.message.content == "नमस्ते, मैं तीना हूं।"
    history = await chat.runtime.conversations.history(chat.alice, session.id)
    assert [m.content for m in history] == ["नमस्ते, मैं तीना हूं।"]


async def test_a_turn_streams_and_is_saved(chat: Chat) -> None:
    chat.server.token_delay = 0.01  # deltas read together are handed on as one
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await _turn(chat, session.id, "मेरी शादी कब होगी?")
    assert isinstance(events[0], MessageSaved)
    assert events[0].message.content == "मेरी शादी कब होगी?"
    deltas = [e.text for e in events if isinstance(e, Delta)]
    done = events[-1]
    assert isinstance(done, Done)
    assert len(deltas) > 1
    assert done.message.content == "".join(deltas)
    assert done.message.status == "complete"
    assert done.usage["completion_tokens"] > 0
    request = chat.server.requests[-1]
    system = request.messages[0]
    assert system["role"] == "system"
    assert "Always answer in Hindi" in system["content"]
    assert [m["role"] for m in request.messages] == ["system", "assistant", "user"]
    session = await chat.runtime.conversations.get(chat.alice, session.id)
    assert session.turns == 1


async def test_a_turn_visits_the_database_three_times_and_commits_twice(chat: Chat) -> None:
    """The session read (its claim with it), then claim + user message + reply row in
    one transaction, then reply + release + metrics in one."""
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, session.id, "warm the caches up")
    visits: list[str] = []

    def seen(kind: str) -> Any:
        return lambda *_args: visits.append(kind)

    engine = chat.runtime.engine.sync_engine
    hooks = {"checkout": seen("checkout"), "commit": seen("commit")}
    for name, hook in hooks.items():
        sa.event.listen(engine, name, hook)
    try:
        events = await _turn(chat, session.id, "count the trips")
    finally:
        for name, hook in hooks.items():
            sa.event.remove(engine, name, hook)
    assert isinstance(events[-1], Done) and events[-1].message.status == "complete"
    assert (visits.count("checkout"), visits.count("commit")) == (3, 2)
    history = await chat.runtime.conversations.history(chat.alice, session.id)
    assert [m.status for m in history[-2:]] == ["complete", "complete"]
    assert (await chat.runtime.conversations.get(chat.alice, session.id)).turns == 2


async def test_switching_persona_greets_and_changes_the_prompt(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, session.id, "hello")
    events = await chat.runtime.conversations.switch(chat.alice, session.id, "mohit")
    switched = events[0]
    assert isinstance(switched, PersonaSwitched)
    assert (switched.persona_id, switched.language) == ("mohit", "en")
    assert switched.voice["voice_id"] == "onyx"
    assert events[-1].message.content == "Hello, I am Mohit."
    await _turn(chat, session.id, "and now?")
    request = chat.server.requests[-1]
    assert request.messages[0]["content"].startswith("You are Mohit")
    earlier = [m["content"] for m in request.messages if m["role"] == "assistant"]
    assert earlier[0].startswith("[Tina Kulkarni, earlier in this conversation]")
    history = await chat.runtime.conversations.history(chat.alice, session.id)
    assert [m.persona_id for m in history] == ["tina", "tina", "tina", "mohit", "mohit",
                                               "mohit", "mohit"]
    assert history[3].role == "event"


async def test_history_survives_a_restart(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, session.id, "remember me")
    before = await chat.runtime.conversations.history(chat.alice, session.id)
    reopened = await Runtime.open(chat.settings, watch=False)
    try:
        after = await reopened.conversations.history(chat.alice, session.id)
    finally:
        await reopened.close()
    assert [(m.role, m.content, m.status) for m in after] == \
        [(m.role, m.content, m.status) for m in before]
    assert len(after) == 3


async def test_a_client_that_leaves_mid_stream_leaves_an_interrupted_reply(chat: Chat) -> None:
    chat.server.token_delay = 0.05
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "tell me everything")
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Delta):
                break  # the client goes away after the first words
    history = await chat.runtime.conversations.history(chat.alice, session.id)
    reply = history[-1]
    assert reply.role == "assistant"
    assert reply.status == "interrupted"
    assert reply.content
    chat.server.token_delay = 0.0
    assert isinstance((await _turn(chat, session.id, "again"))[-1], Done)  # turn released


async def test_a_client_that_leaves_before_the_first_words_is_not_a_failure(
        chat: Chat) -> None:
    chat.server.latency = 5.0  # the model has not answered yet when the client leaves
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "hello?")
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, MessageSaved):
                break  # the user's message is saved; the client goes away
    reply = (await chat.runtime.conversations.history(chat.alice, session.id))[-1]
    assert (reply.role, reply.status, reply.content) == ("assistant", "interrupted", "")


async def test_a_second_send_during_a_reply_gets_409(chat: Chat) -> None:
    chat.server.latency = 0.5
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    first = asyncio.create_task(_turn(chat, session.id, "first"))
    await asyncio.sleep(0.2)
    with pytest.raises(TurnInProgress, match="already answering"):
        await chat.runtime.conversations.send(chat.alice, session.id, "second")
    assert isinstance((await first)[-1], Done)


async def test_other_users_sessions_do_not_exist_for_you(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    with pytest.raises(NotFound):
        await chat.runtime.conversations.get(chat.bob, session.id)
    with pytest.raises(NotFound):
        await chat.runtime.conversations.send(chat.bob, session.id, "hi")
    with pytest.raises(NotFound):
        await chat.runtime.conversations.history(chat.bob, session.id)
    with pytest.raises(NotFound):
        await chat.runtime.conversations.delete(chat.bob, session.id)
    assert (await chat.runtime.conversations.list(chat.bob))[1] == 0


async def test_parallel_sessions_never_see_each_others_words(chat: Chat) -> None:
    chat.server.token_delay = 0.01
    sessions = [(await chat.runtime.conversations.open(p, pid))[0]
                for p, pid in ((chat.alice, "tina"), (chat.bob, "mohit"))]
    results = await asyncio.gather(
        _turn(chat, sessions[0].id, "alpha-nonce-111", "alice"),
        _turn(chat, sessions[1].id, "bravo-nonce-222", "bob"))
    assert "alpha-nonce-111" in results[0][-1].message.content
    assert "bravo-nonce-222" not in results[0][-1].message.content
    assert "bravo-nonce-222" in results[1][-1].message.content
    bob_history = await chat.runtime.conversations.history(chat.bob, sessions[1].id)
    assert all("alpha" not in m.content for m in bob_history)


async def test_knowledge_items_are_ranked_into_the_prompt(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    done = (await _turn(chat, session.id, "What is the remedy for manglik dosha?"))[-1]
    assert [k["label"] for k in done.message.meta["knowledge"]] == ["Manglik dosha"]
    system = chat.server.requests[-1].messages[0]["content"]
    assert "kumbh vivah" in system
    assert "Auspicious wedding dates" not in system


async def test_provider_failure_is_recorded_as_failed_never_invented(chat: Chat) -> None:
    chat.server.fail_always(500)
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await _turn(chat, session.id, "hello")
    failed = events[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.status == 502
    assert "fake" in failed.message
    assert failed.saved is not None
    assert failed.saved.status == "failed"
    assert failed.saved.content == ""
    metrics = await chat.runtime.conversations.store.metrics("tina")
    assert {m["metric"] for m in metrics} >= {"errors", "turns"}


async def test_metrics_are_recorded_per_persona_version(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, session.id, "one")
    await _turn(chat, session.id, "two")
    metrics = {m["metric"]: m for m in await chat.runtime.conversations.store.metrics("tina")}
    assert metrics["turns"]["count"] == 2
    assert metrics["turns"]["version"] == 1
    assert metrics["time_to_first_token_ms"]["count"] == 2
    assert metrics["completion_tokens"]["total"] > 0


async def test_session_pins_the_persona_version(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    admin = await chat.runtime.auth.local_admin()
    await chat.runtime.personas.patch(admin, "tina", {"system_prompt": "NEW RULES"},
                                      base_version=1)
    await _turn(chat, session.id, "hi")
    assert "NEW RULES" not in chat.server.requests[-1].messages[0]["content"]
    fresh, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, fresh.id, "hi")
    assert "NEW RULES" in chat.server.requests[-1].messages[0]["content"]


async def test_a_turn_never_started_holds_nothing(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    abandoned = await chat.runtime.conversations.send(chat.alice, session.id, "never read")
    del abandoned  # e.g. the client vanished before the stream began
    assert isinstance((await _turn(chat, session.id, "still works"))[-1], Done)


async def test_a_lost_race_for_the_session_arrives_as_a_409_event(chat: Chat) -> None:
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    chat.server.latency = 0.3
    first = await chat.runtime.conversations.send(chat.alice, session.id, "first")
    second = await chat.runtime.conversations.send(chat.alice, session.id, "second")
    first_events = asyncio.create_task(_drain(first))
    await asyncio.sleep(0.1)
    (lost,) = [event async for event in second]
    assert isinstance(lost, TurnFailed)
    assert (lost.code, lost.status) == ("turn_in_progress", 409)
    assert isinstance((await first_events)[-1], Done)


async def _drain(events) -> list:
    return [event async for event in events]


async def test_idle_sessions_expire_and_keep_their_history(chat: Chat) -> None:
    from datetime import timedelta

    from personae.errors import Conflict

    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _turn(chat, session.id, "before")
    assert await chat.runtime.conversations.store.expire_idle(timedelta(hours=1)) == 0
    assert await chat.runtime.conversations.store.expire_idle(timedelta(0)) == 1
    expired = await chat.runtime.conversations.get(chat.alice, session.id)
    assert expired.status == "expired"
    with pytest.raises(Conflict, match="expired"):
        await chat.runtime.conversations.send(chat.alice, session.id, "after")
    assert len(await chat.runtime.conversations.history(chat.alice, session.id)) == 3


async def test_an_unknown_provider_fails_the_turn_clearly(chat: Chat) -> None:
    admin = await chat.runtime.auth.local_admin()
    await chat.runtime.personas.create(admin, {"id": "lost", "name": "Lost",
                                               "model": {"provider": "nowhere"}},
                                       global_scope=True)
    session, _ = await chat.runtime.conversations.open(chat.alice, "lost")
    failed = (await _turn(chat, session.id, "hello"))[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.status == 503
    assert "nowhere: no such provider" in failed.message
    assert failed.saved is not None
    assert failed.saved.status == "failed"


async def test_a_prompt_template_that_fails_at_render_time_is_a_clear_409(
        chat: Chat) -> None:
    from personae.errors import Conflict
    from personae.personas.schema import PersonaDefinition

    admin = await chat.runtime.auth.local_admin()
    # As stored before templates were rendered at create time (parse_persona refuses it).
    stored = PersonaDefinition.model_validate({"id": "odd", "name": "Odd",
                                               "prompt_template": "{{ persona.no_such }}"})
    await chat.runtime.personas.create(admin, stored, global_scope=True)
    with pytest.raises(Conflict, match=r"^persona 'odd': prompt template failed: line 1"):
        await chat.runtime.conversations.open(chat.alice, "odd")
    assert chat.server.chat_count == 0  # the model was never called
