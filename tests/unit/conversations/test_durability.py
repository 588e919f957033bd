"""A crash loses nothing a client saw: reply rows from the start, flushed text, leases
that expire, restarts that recover, and a drain that saves what it stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import timedelta

import anyio
import pytest
import sqlalchemy as sa

from personae.conversations.durability import TurnTiming
from personae.conversations.events import Delta, Done, MessageSaved, TurnEvent, TurnFailed
from personae.conversations.records import TurnOpening
from personae.conversations.store import ConversationStore, MessageRecord, TurnHolder
from personae.errors import ShuttingDown, TurnInProgress
from tests.support.chat import Chat

LONG = " ".join(f"word{i}" for i in range(400))
LIVE = timedelta(seconds=30)
EXPIRED = timedelta(seconds=-1)  # a lease that ran out: its holder stopped renewing it


class Seen:
    """What a client received of one reply, and when."""

    def __init__(self) -> None:
        self.moments: list[tuple[float, str]] = []  # (monotonic time, text so far)

    def add(self, text: str) -> None:
        so_far = self.moments[-1][1] if self.moments else ""
        self.moments.append((time.monotonic(), so_far + text))

    @property
    def text(self) -> str:
        return self.moments[-1][1] if self.moments else ""

    def before(self, moment: float) -> str:
        return next((text for at, text in reversed(self.moments) if at <= moment), "")


def _fast_flush(chat: Chat, flush: float = 0.2, lease: timedelta = LIVE) -> None:
    chat.runtime.conversations.turns.timing = TurnTiming(lease, flush)


async def _reply_row(chat: Chat, session_id: str) -> MessageRecord:
    history = await chat.runtime.conversations.history(chat.alice, session_id)
    assert history[-1].role == "assistant"
    return history[-1]


async def _streaming(chat: Chat, session_id: str, seen: Seen,
                     until: float) -> AsyncIterator[TurnEvent]:
    """Start a long turn; yield its events while recording deltas, up to ``until`` s."""
    events = await chat.runtime.conversations.send(chat.alice, session_id, "tell me all")
    started = time.monotonic()
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Delta):
                seen.add(event.text)
            yield event
            if time.monotonic() - started >= until:
                break


async def _dead_turn(store: ConversationStore, session_id: str, holder: TurnHolder,
                     lease: timedelta, text: str = "words a client saw") -> MessageRecord:
    """What a process that died mid-reply leaves: its claim and a flushed streaming row."""
    opened = await store.open_turn(TurnOpening(session_id, holder, lease, "question", "tina",
                                               1, 10))
    assert opened is not None
    await store.flush_reply(opened.reply.id, text)
    return opened.reply


async def _turn_ends(chat: Chat, session_id: str, text: str = "again") -> TurnEvent:
    events = await chat.runtime.conversations.send(chat.alice, session_id, text)
    return [event async for event in events][-1]


async def test_the_reply_is_a_row_from_the_start_and_its_text_is_flushed(chat: Chat) -> None:
    _fast_flush(chat, flush=0.2)
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG), 0.01
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    seen = Seen()
    events = await chat.runtime.conversations.send(chat.alice, session.id, "tell me all")
    async with aclosing(events) as stream:
        async for event in stream:
            if not isinstance(event, Delta):
                continue
            seen.add(event.text)
            if len(seen.moments) == 1:
                first = await _reply_row(chat, session.id)
                assert (first.status, first.meta) == ("streaming", {})
            if seen.moments[-1][0] - seen.moments[0][0] > 1.2:
                break
        row = await _reply_row(chat, session.id)  # read while the reply still streams
    assert row.status == "streaming"
    assert seen.text.startswith(row.content)  # nothing the client was not sent
    # everything the client had 0.2 s (the flush interval) ago, with 0.4 s to spare
    assert row.content.startswith(seen.before(time.monotonic() - 0.2 - 0.4))
    assert len(row.content) > len("word0 word1")


async def test_flushing_costs_no_write_per_delta(chat: Chat) -> None:
    _fast_flush(chat, flush=0.25)
    reply = " ".join(f"word{i}" for i in range(150))
    chat.server.reply, chat.server.token_delay = (lambda _body: reply), 0.004
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    writes: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            writes.append(statement)

    sync_engine = chat.runtime.engine.sync_engine
    sa.event.listen(sync_engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        final = await _turn_ends(chat, session.id, "go")
        seconds = time.monotonic() - started
    finally:
        sa.event.remove(sync_engine, "before_cursor_execute", count)
    assert isinstance(final, Done) and final.message.content == reply
    deltas = len(reply.split())
    # one flush per interval, and the final update; never one per delta
    assert len(writes) <= seconds / 0.25 + 2 < deltas / 4


async def test_a_running_turn_renews_its_lease(chat: Chat) -> None:
    _fast_flush(chat, flush=0.1, lease=timedelta(seconds=0.6))
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG), 0.01
    store = chat.runtime.conversations.store
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    async for _event in _streaming(chat, session.id, Seen(), until=1.5):  # 2.5 leases
        assert await store.turn_busy(session.id)
    assert not await store.turn_busy(session.id)  # released once the stream was closed


async def test_a_claim_whose_lease_expired_is_taken_over_and_its_reply_interrupted(
        chat: Chat) -> None:
    store = chat.runtime.conversations.store
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    dead = await _dead_turn(store, session.id, TurnHolder("gone", "elsewhere"), EXPIRED)
    done = await _turn_ends(chat, session.id)
    assert isinstance(done, Done)
    history = await chat.runtime.conversations.history(chat.alice, session.id)
    left = next(m for m in history if m.id == dead.id)
    assert (left.status, left.content) == ("interrupted", "words a client saw")
    assert [m.status for m in history].count("streaming") == 0


async def test_a_live_claim_elsewhere_still_gets_409(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    await _dead_turn(store, session.id, TurnHolder("alive", "elsewhere"), LIVE)
    with pytest.raises(TurnInProgress):
        await chat.runtime.conversations.send(chat.alice, session.id, "hello")


async def test_a_restart_under_the_same_node_frees_its_predecessors_turns_at_once(
        chat: Chat) -> None:
    store = chat.runtime.conversations.store
    opened = [(await chat.runtime.conversations.open(chat.alice, "tina"))[0]
              for _ in range(3)]
    mine = await _dead_turn(store, opened[0].id, TurnHolder("before", "node-a"), LIVE)
    await _dead_turn(store, opened[1].id, TurnHolder("other", "node-b"), LIVE)
    await _dead_turn(store, opened[2].id, TurnHolder("cli", None), LIVE)
    conversations = chat.runtime.conversations
    conversations.turns.holder = TurnHolder("after", "node-a")
    await conversations.start()
    assert isinstance(await _turn_ends(chat, opened[0].id), Done)
    left = (await chat.runtime.conversations.history(chat.alice, opened[0].id))
    assert next(m for m in left if m.id == mine.id).status == "interrupted"
    for other in opened[1:]:  # live processes on other nodes, or without one, keep theirs
        with pytest.raises(TurnInProgress):
            await conversations.send(chat.alice, other.id, "hello")
        assert (await _reply_row(chat, other.id)).status == "streaming"


async def test_start_up_interrupts_expired_turns_without_a_new_turn(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    dead = await _dead_turn(store, session.id, TurnHolder("gone", "node-z"), EXPIRED)
    found = await chat.runtime.conversations.recover()
    assert (found.claims, found.replies) == (1, 1)
    row = await _reply_row(chat, session.id)
    assert (row.id, row.status, row.content) == (dead.id, "interrupted", "words a client saw")
    assert not await store.turn_busy(session.id)


async def test_drain_lets_a_running_turn_finish_and_refuses_new_ones(chat: Chat) -> None:
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG[:300]), 0.01
    conversations = chat.runtime.conversations
    first, _ = await conversations.open(chat.alice, "tina")
    second, _ = await conversations.open(chat.alice, "tina")
    events = await conversations.send(chat.alice, first.id, "go")
    assert isinstance(await anext(events), MessageSaved)
    draining = asyncio.create_task(conversations.drain(10))
    await asyncio.sleep(0)  # one loop round: the drain task has taken its first step
    with pytest.raises(ShuttingDown) as refused:
        await conversations.send(chat.alice, second.id, "too late")
    assert (refused.value.status, refused.value.details["retry_after"]) == (503, 5)
    rest = [event async for event in events]
    assert isinstance(rest[-1], Done) and rest[-1].message.status == "complete"
    await asyncio.wait_for(draining, 5)


async def test_drain_stops_a_turn_past_the_grace_period_and_saves_what_was_sent(
        chat: Chat) -> None:
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG), 0.02
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    seen, collected = Seen(), []
    events = await chat.runtime.conversations.send(chat.alice, session.id, "go")
    async for event in events:
        collected.append(event)
        if isinstance(event, Delta):
            seen.add(event.text)
            if len(seen.moments) == 5:
                draining = asyncio.create_task(chat.runtime.conversations.drain(0.3))
    stopped = collected[-1]
    assert isinstance(stopped, TurnFailed)
    assert (stopped.code, stopped.status) == ("shutting_down", 503)
    assert stopped.saved is not None and stopped.saved.status == "interrupted"
    assert stopped.saved.content == seen.text  # exactly what the client was sent
    assert 5 <= len(seen.moments) < len(LONG.split())
    await asyncio.wait_for(draining, 5)
    row = await _reply_row(chat, session.id)
    assert (row.status, row.content) == ("interrupted", seen.text)
    assert not await chat.runtime.conversations.store.turn_busy(session.id)


async def test_drain_stops_a_turn_whose_model_never_answers(chat: Chat) -> None:
    chat.server.hang = True
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "hello?")
    assert isinstance(await anext(events), MessageSaved)
    waiting = asyncio.create_task(anext(events))
    while not chat.server.requests:  # noqa: ASYNC110 - the model server is another thread
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await chat.runtime.conversations.drain(0.2)
    assert time.monotonic() - started < 3  # not the provider's own 5 s timeout
    stopped = await waiting
    assert isinstance(stopped, TurnFailed) and stopped.code == "shutting_down"
    assert stopped.saved is not None
    assert (stopped.saved.status, stopped.saved.content) == ("interrupted", "")


async def test_a_turn_that_lost_its_claim_stops_and_keeps_its_text(chat: Chat) -> None:
    _fast_flush(chat, flush=0.1, lease=timedelta(seconds=0.3))
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG), 0.01
    conversations = chat.runtime.conversations
    session, _ = await conversations.open(chat.alice, "tina")
    events = await conversations.send(chat.alice, session.id, "go")
    collected = [await anext(events), await anext(events)]
    (active,) = conversations.turns.active()
    # another process took the session over (say this one stalled past its lease)
    await conversations.store.finish_turn(session.id, active.turn_id, None)
    assert await conversations.store.claim_turn(session.id, TurnHolder("x"), LIVE)
    collected += [event async for event in events]
    stopped = collected[-1]
    assert isinstance(stopped, TurnFailed) and stopped.code == "conflict"
    assert stopped.saved is not None and stopped.saved.status == "interrupted"
    assert stopped.saved.content == "".join(e.text for e in collected if isinstance(e, Delta))


async def test_a_save_outlives_a_consumer_cancelled_again_and_again(chat: Chat) -> None:
    """sse-starlette cancels through anyio, which cancels again at every await: the
    reply is still saved, and a drain (then closing the runtime) waits for it."""
    chat.server.reply, chat.server.token_delay = (lambda _body: LONG), 0.02
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "go")
    seen = Seen()
    with anyio.CancelScope() as scope:
        async for event in events:
            if isinstance(event, Delta):
                seen.add(event.text)
                if len(seen.moments) == 3:
                    scope.cancel()
    assert scope.cancelled_caught
    assert len(chat.runtime.conversations.turns) == 1  # its consumer gone, its save not done
    await chat.runtime.conversations.drain(0)
    row = await _reply_row(chat, session.id)
    assert (row.status, row.content) == ("interrupted", seen.text)
    assert not await chat.runtime.conversations.store.turn_busy(session.id)


async def test_a_claim_taken_before_leases_existed_still_holds_after_the_upgrade(
        empty_database_url: str) -> None:
    from personae.db.engine import make_engine, migrate
    from personae.db.tables import utcnow

    engine = make_engine(empty_database_url)
    try:
        await migrate(engine, "0003")
        now = utcnow()
        async with engine.begin() as conn:  # a turn in flight while the server upgrades
            await conn.execute(sa.text(
                "INSERT INTO users (id, name, role, created_at, disabled) "
                "VALUES ('u', 'u', 'member', :now, false)"), {"now": now})
            await conn.execute(sa.text(
                "INSERT INTO sessions (id, user_id, persona_id, persona_version, status, "
                "created_at, last_active_at, turns, response_ms_total, turn_id, "
                "turn_started_at, meta) VALUES ('s', 'u', 'p', 1, 'open', :now, :now, 0, "
                "0, 'old-turn', :now, '{}')"), {"now": now})
        await migrate(engine)
        store = ConversationStore(engine)
        assert await store.turn_busy("s")
        assert await store.claim_turn("s", TurnHolder("new"), LIVE) is None
    finally:
        await engine.dispose()
