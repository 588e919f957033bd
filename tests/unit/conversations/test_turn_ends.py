"""A turn's end (reply, release, metrics) is one transaction, shared by the turns that
end while another commit is under way; a failed shared commit is retried turn by turn,
and a turn whose end cannot be saved still frees its session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from personae.conversations.events import Done, TurnEvent
from personae.conversations.records import TurnEnd
from personae.conversations.store import ConversationStore
from tests.support.chat import Chat

EndTurns = Callable[[Sequence[TurnEnd]], Awaitable[None]]


class Spy:
    """Wraps ``store.end_turns``: records each call's size, may hold or fail calls."""

    def __init__(self, store: ConversationStore) -> None:
        self.real: EndTurns = store.end_turns
        self.sizes: list[int] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail_when: Callable[[Sequence[TurnEnd]], bool] = lambda _ends: False
        self.failure: Exception = sa.exc.IntegrityError("UPDATE", {}, Exception("a bad row"))
        store.end_turns = self  # type: ignore[method-assign]

    async def __call__(self, ends: Sequence[TurnEnd]) -> None:
        self.sizes.append(len(ends))
        await self.hold.wait()
        if self.fail_when(ends):
            raise self.failure
        await self.real(ends)


async def _turn(chat: Chat, session_id: str, text: str) -> list[TurnEvent]:
    events = await chat.runtime.conversations.send(chat.alice, session_id, text)
    return [event async for event in events]


async def _sessions(chat: Chat, count: int) -> list[str]:
    return [(await chat.runtime.conversations.open(chat.alice, "tina"))[0].id
            for _ in range(count)]


async def test_turns_that_end_during_a_commit_share_the_next_one(chat: Chat) -> None:
    conversations = chat.runtime.conversations
    ids = await _sessions(chat, 6)
    spy = Spy(conversations.store)
    spy.hold.clear()
    first = asyncio.create_task(_turn(chat, ids[0], "first"))
    while not spy.sizes:  # noqa: ASYNC110 - the first turn's end reaches the store
        await asyncio.sleep(0.01)
    rest = [asyncio.create_task(_turn(chat, sid, f"then {i}")) for i, sid in enumerate(ids[1:])]
    while conversations.store.turn_ends.waiting < 5:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    spy.hold.set()
    results = [await first, *[await task for task in rest]]
    assert spy.sizes == [1, 5]
    assert all(isinstance(events[-1], Done) for events in results)
    for sid, events in zip(ids, results, strict=True):
        history = await conversations.history(chat.alice, sid)
        assert history[-1].status == "complete" and history[-1].id == events[-1].message.id
        assert (await conversations.get(chat.alice, sid)).turns == 1
    metrics = {m["metric"]: m for m in await conversations.store.metrics("tina")}
    assert metrics["turns"]["count"] == 6
    assert metrics["response_ms"]["minimum"] <= metrics["response_ms"]["maximum"]


async def _two_ending_behind_one(chat: Chat, spy: Spy, ids: list[str]) -> list[Any]:
    """The first turn's end is held in its commit while the other two wait to end
    together in the next; then all are let go. Each turn's events, or its exception."""
    spy.hold.clear()
    tasks = [asyncio.create_task(_turn(chat, ids[0], "one"))]
    while not spy.sizes:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    tasks += [asyncio.create_task(_turn(chat, sid, "more")) for sid in ids[1:]]
    while chat.runtime.conversations.store.turn_ends.waiting < 2:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    spy.hold.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_shared_commit_that_fails_is_retried_turn_by_turn(chat: Chat) -> None:
    conversations = chat.runtime.conversations
    ids = await _sessions(chat, 3)
    spy = Spy(conversations.store)
    spy.fail_when = lambda ends: len(ends) > 1 or ends[0].session_id == ids[2]
    done = await _two_ending_behind_one(chat, spy, ids)
    assert spy.sizes == [1, 2, 1, 1]  # the shared commit failed; each alone, one fails
    assert isinstance(done[0][-1], Done) and isinstance(done[1][-1], Done)  # type: ignore[index]
    assert isinstance(done[2], sa.exc.IntegrityError)
    # the turn whose end was not saved freed its session, and recovery interrupts its reply
    assert not await conversations.store.turn_busy(ids[2])
    assert (await conversations.recover()).replies == 1
    history = await conversations.history(chat.alice, ids[2])
    assert [m.status for m in history] == ["complete", "complete", "interrupted"]
    spy.fail_when = lambda _ends: False
    assert isinstance((await _turn(chat, ids[2], "again"))[-1], Done)


async def test_a_shared_commit_the_database_failed_fails_every_turn_in_it(chat: Chat) -> None:
    conversations = chat.runtime.conversations
    ids = await _sessions(chat, 3)
    spy = Spy(conversations.store)
    spy.failure = sa.exc.OperationalError("COMMIT", {}, Exception("database is away"))
    spy.fail_when = lambda ends: len(ends) > 1
    done = await _two_ending_behind_one(chat, spy, ids)
    assert spy.sizes == [1, 2]  # no turn-by-turn retry: it would fail the same way
    assert isinstance(done[0][-1], Done)  # type: ignore[index]
    assert all(isinstance(failed, sa.exc.OperationalError) for failed in done[1:])
    for sid in ids[1:]:
        assert not await conversations.store.turn_busy(sid)


async def test_a_turn_whose_end_cannot_be_saved_frees_its_session(chat: Chat) -> None:
    conversations = chat.runtime.conversations
    (sid,) = await _sessions(chat, 1)
    spy = Spy(conversations.store)
    spy.fail_when = lambda _ends: True
    spy.failure = sa.exc.OperationalError("UPDATE", {}, Exception("database is away"))
    with pytest.raises(sa.exc.OperationalError, match="database is away"):
        await _turn(chat, sid, "lost")
    assert not await conversations.store.turn_busy(sid)
    spy.fail_when = lambda _ends: False
    assert isinstance((await _turn(chat, sid, "back"))[-1], Done)
