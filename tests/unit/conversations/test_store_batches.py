"""Reads and turn openings made at the same time share one query, one transaction: each
still gets exactly its own answer (its session, its claim, its messages, its history)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from personae.conversations.records import OpenedTurn, TurnHolder, TurnOpening
from personae.conversations.store import ConversationStore
from tests.support.chat import Chat

HOLDER = TurnHolder("this-process")
LEASE = timedelta(seconds=30)


class Visits:
    """Pool checkouts and commits on the store's engine while in use."""

    def __init__(self, store: ConversationStore) -> None:
        self.engine = store.engine.sync_engine
        self.seen: list[str] = []
        self.hooks = {kind: self._hook(kind) for kind in ("checkout", "commit")}

    def _hook(self, kind: str) -> Any:
        return lambda *_args: self.seen.append(kind)

    def __enter__(self) -> Visits:
        for kind, hook in self.hooks.items():
            sa.event.listen(self.engine, kind, hook)
        return self

    def __exit__(self, *_exc: object) -> None:
        for kind, hook in self.hooks.items():
            sa.event.remove(self.engine, kind, hook)

    def count(self, kind: str) -> int:
        return self.seen.count(kind)


def opening(session_id: str, text: str, holder: TurnHolder = HOLDER,
            lease: timedelta = LEASE, limit: int = 10) -> TurnOpening:
    return TurnOpening(session_id, holder, lease, text, "tina", 1, limit)


async def _sessions(chat: Chat, count: int) -> list[str]:
    return [(await chat.runtime.conversations.open(chat.alice, "tina"))[0].id
            for _ in range(count)]


async def test_turns_opened_together_share_one_transaction(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    ids = await _sessions(chat, 5)
    with Visits(store) as visits:
        opened = await asyncio.gather(*(store.open_turn(opening(sid, f"hello {i}"))
                                        for i, sid in enumerate(ids)))
    assert (visits.count("checkout"), visits.count("commit")) == (1, 1)
    for i, (sid, turn) in enumerate(zip(ids, opened, strict=True)):
        assert isinstance(turn, OpenedTurn)
        assert (turn.user.session_id, turn.user.content, turn.user.role) == (sid, f"hello {i}",
                                                                             "user")
        assert (turn.reply.session_id, turn.reply.status) == (sid, "streaming")
        assert [m.content for m in turn.history] == ["नमस्ते, मैं तीना हूं।"]  # its greeting
        session = await store.get_session(chat.alice.user_id, sid)
        assert session is not None and session.answering
        history = await chat.runtime.conversations.history(chat.alice, sid)
        assert [m.id for m in history[1:]] == [turn.user.id, turn.reply.id]


async def test_a_batch_gives_a_session_to_one_opening_and_takes_over_expired_claims(
        chat: Chat) -> None:
    store = chat.runtime.conversations.store
    free, busy, expired = await _sessions(chat, 3)
    assert await store.open_turn(opening(busy, "first")) is not None
    dead = await store.open_turn(opening(expired, "gone", TurnHolder("dead"),
                                         timedelta(seconds=-1)))
    assert dead is not None
    await store.flush_reply(dead.reply.id, "what was said")
    first, second, refused, taken = await asyncio.gather(
        store.open_turn(opening(free, "one")), store.open_turn(opening(free, "two")),
        store.open_turn(opening(busy, "again")), store.open_turn(opening(expired, "back")))
    assert first is not None and second is None and refused is None and taken is not None
    history = await chat.runtime.conversations.history(chat.alice, expired)
    left = next(m for m in history if m.id == dead.reply.id)
    assert (left.status, left.content) == ("interrupted", "what was said")
    assert [m.id for m in taken.history][-2:] == [dead.user.id, dead.reply.id]
    assert [m.content for m in await chat.runtime.conversations.history(chat.alice, free)
            ][1:] == ["one", ""]


async def test_history_is_each_sessions_own_newest_messages(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    talkative, quiet = await _sessions(chat, 2)
    for i in range(3):
        events = await chat.runtime.conversations.send(chat.alice, talkative, f"say {i}")
        _ = [event async for event in events]
    long, short = await asyncio.gather(store.open_turn(opening(talkative, "more", limit=4)),
                                       store.open_turn(opening(quiet, "hi", limit=4)))
    assert long is not None and short is not None
    assert [m.content for m in long.history][::2] == ["say 1", "say 2"]
    assert len(long.history) == 4 and long.history[-1].role == "assistant"
    assert [m.content for m in short.history] == ["नमस्ते, मैं तीना हूं।"]


async def test_reads_made_together_share_one_query_and_stay_scoped_to_their_user(
        chat: Chat) -> None:
    store = chat.runtime.conversations.store
    ids = await _sessions(chat, 3)
    with Visits(store) as visits:
        found = await asyncio.gather(*(store.get_session(chat.alice.user_id, sid)
                                       for sid in ids),
                                     store.get_session(chat.bob.user_id, ids[0]),
                                     store.get_session(chat.alice.user_id, "no-such-session"))
    assert visits.count("checkout") == 1
    assert [s.id if s else None for s in found] == [*ids, None, None]


async def test_replies_flushed_together_share_one_transaction(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    ids = await _sessions(chat, 3)
    opened = await asyncio.gather(*(store.open_turn(opening(sid, "go")) for sid in ids))
    with Visits(store) as visits:
        await asyncio.gather(*(store.flush_reply(turn.reply.id, f"so far {i}")
                               for i, turn in enumerate(opened) if turn))
    assert visits.count("commit") == 1
    for i, sid in enumerate(ids):
        reply = (await chat.runtime.conversations.history(chat.alice, sid))[-1]
        assert (reply.status, reply.content) == ("streaming", f"so far {i}")


async def test_an_opening_whose_caller_left_before_its_batch_writes_nothing(
        chat: Chat) -> None:
    store = chat.runtime.conversations.store
    (sid,) = await _sessions(chat, 1)
    leaving = asyncio.create_task(store.open_turn(opening(sid, "are you there?")))
    await asyncio.sleep(0)  # its opening waits for the batch that is about to start
    leaving.cancel()
    assert await store.open_turn(opening(sid, "here")) is not None  # the next batch
    history = await chat.runtime.conversations.history(chat.alice, sid)
    assert [m.content for m in history[1:]] == ["here", ""]


async def test_a_turn_opened_for_a_caller_that_left_is_let_go(chat: Chat) -> None:
    store = chat.runtime.conversations.store
    (sid,) = await _sessions(chat, 1)
    leaving = asyncio.create_task(store.open_turn(opening(sid, "are you there?")))

    def leave_mid_batch(*_args: object) -> None:
        leaving.cancel()  # the caller goes while its batch is in the database

    sync_engine = store.engine.sync_engine
    sa.event.listen(sync_engine, "before_cursor_execute", leave_mid_batch, once=True)
    try:
        await asyncio.gather(leaving, return_exceptions=True)
    finally:
        if sa.event.contains(sync_engine, "before_cursor_execute", leave_mid_batch):
            sa.event.remove(sync_engine, "before_cursor_execute", leave_mid_batch)
    assert leaving.cancelled()
    history = chat.runtime.conversations.history
    async with asyncio.timeout(5):  # the batch goes on without its caller, then lets go
        while (await history(chat.alice, sid))[-1].status != "failed":  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert [(m.role, m.status) for m in (await history(chat.alice, sid))[1:]] == [
        ("user", "complete"), ("assistant", "failed")]
    assert not await store.turn_busy(sid)  # released in the same transaction
    assert await store.open_turn(opening(sid, "again")) is not None
