"""Crash drills against real ``personae serve`` processes and a slow loopback model.

kill -9 with twenty replies streaming over SSE, on two servers (nodes) sharing one
database: nothing a client was told is lost, every reply in flight has its row, and
every session takes a new turn again (at once on the restarted node, after the lease
elsewhere). SIGTERM: replies that can finish in the grace period finish; the rest are
saved as interrupted with exactly what their clients were sent; nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from personae.config import Settings
from personae.conversations.store import MessageRecord
from personae.providers.fake import FakeOpenAIServer
from tests.support.drill import (
    Turn,
    histories,
    open_turns,
    provider_environment,
    seed_global,
    stream_turn,
    until,
    websocket_turn,
)
from tests.support.personas import MOHIT
from tests.support.servers import ServeProcess, serve_processes

pytestmark = pytest.mark.slow

TOKEN_DELAY = 0.05  # the model's pace: 20 words a second
LONG = " ".join(f"long{i}" for i in range(300))  # 15 s of reply: still streaming at the kill
SHORT = " ".join(f"short{i}" for i in range(8))  # done well before it
FLUSH_SECONDS = 1.0  # the default: what a client saw more than this long ago is saved
MARGIN = 0.5  # for the database write that saves it
SHORT_LEASE = 3  # node B's; node A keeps the default 30 s, so only a restart frees it


















def _reply_to(turn: Turn, history: list[MessageRecord]) -> MessageRecord:
    """The turn's user message is stored as sent, and exactly one reply row follows it."""
    assert turn.user is not None, "every turn here was acknowledged"
    by_id = {m.id: m for m in history}
    assert by_id[turn.user["id"]].content == turn.text
    (reply,) = [m for m in history if m.role == "assistant" and m.id > turn.user["id"]]
    return reply


def _check_in_flight(turn: Turn, reply: MessageRecord, killed_at: float) -> None:
    consistent = turn.seen.startswith(reply.content) or reply.content.startswith(turn.seen)
    assert consistent, (reply.content[-80:], turn.seen[-80:])
    saved_by_then = turn.seen_before(killed_at - FLUSH_SECONDS - MARGIN)
    assert saved_by_then, "the reply streamed for long enough before the kill"
    assert reply.content.startswith(saved_by_then)


async def _send_until_accepted(client: httpx.AsyncClient, session_id: str,
                               seconds: float) -> float:
    """Seconds until the session took a new turn (409 while a dead claim holds it)."""
    started = time.monotonic()
    while True:
        answer = await client.post(f"/v1/sessions/{session_id}/messages",
                                   json={"content": "are you back"})
        if answer.status_code == 200:
            assert answer.json()["reply"]["status"] == "complete"
            return time.monotonic() - started
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "turn_in_progress"
        assert time.monotonic() - started < seconds, "the dead claim never expired"
        await asyncio.sleep(0.2)  # the claim belongs to a dead process: nothing to await


async def _stream_and_kill(servers: tuple[ServeProcess, ...]) -> tuple[list[Turn], float]:
    """Ten turns per server (two short), killed -9 once the long ones streamed 2 s."""
    clients = [httpx.AsyncClient(base_url=s.url, timeout=30) for s in servers]
    try:
        turns = [await open_turns(c, "mohit", [SHORT] * 2 + [LONG] * 8) for c in clients]
        tasks = [asyncio.create_task(stream_turn(c, t))
                 for c, ts in zip(clients, turns, strict=True) for t in ts]
        everything = [t for ts in turns for t in ts]
        await until(lambda: all(t.moments and time.monotonic() - t.moments[0][0] > 2
                                 for t in everything if t.text == LONG)
                     and all(t.final for t in everything if t.text == SHORT),
                     "two seconds of streaming")
        for server in servers:
            server.kill()
        killed_at = time.monotonic()
        await asyncio.gather(*tasks)
        assert all(t.status == 200 for t in everything), [t.status for t in everything]
        return everything, killed_at
    finally:
        for client in clients:
            await client.aclose()


async def test_kill_9_mid_stream_loses_nothing_clients_saw(database_url: str,
                                                           tmp_path: Path) -> None:
    async with FakeOpenAIServer(token_delay=TOKEN_DELAY) as model:
        settings = Settings(data_dir=tmp_path, database_url=database_url)
        await seed_global(settings, MOHIT)
        env = provider_environment(model)
        # Two nodes, named by personae serve after host and port: A (lease 30 s) comes
        # back on its port, so under its name; B (lease 3 s) stays dead.
        a = ServeProcess(database_url, tmp_path, env)
        b = ServeProcess(database_url, tmp_path, {
            **env, "PERSONAE_TURN_LEASE_SECONDS": str(SHORT_LEASE)})
        with serve_processes(a, b):
            turns, killed_at = await _stream_and_kill((a, b))
            stored = await histories(settings, [t.session_id for t in turns])
            for turn in turns:
                reply = _reply_to(turn, stored[turn.session_id])
                if turn.text == SHORT:
                    assert turn.final is not None and turn.final["type"] == "done"
                    assert (reply.status, reply.content) == ("complete", SHORT)
                else:
                    assert turn.broken and turn.final is None
                    assert reply.status == "streaming"  # no process is left to end it
                    _check_in_flight(turn, reply, killed_at)
            a.start()  # the same node, on the same port: its turns are freed at start
            async with httpx.AsyncClient(base_url=a.url, timeout=30) as client:
                on_a = await asyncio.gather(*[_send_until_accepted(client, t.session_id, 0)
                                              for t in turns[:10]])
                on_b = await asyncio.gather(*[_send_until_accepted(client, t.session_id, 30)
                                              for t in turns[10:]])
        assert max(on_a) < 5 and max(on_b) <= SHORT_LEASE + 5
        after = await histories(settings, [t.session_id for t in turns])
        for turn in turns:
            reply = _reply_to_first(turn, after[turn.session_id])
            if turn.text == LONG:
                assert reply.status == "interrupted"
                _check_in_flight(turn, reply, killed_at)
        assert not [m for h in after.values() for m in h if m.status == "streaming"]


def _reply_to_first(turn: Turn, history: list[MessageRecord]) -> MessageRecord:
    """The reply row right after the turn's user message (later turns follow it)."""
    assert turn.user is not None
    return next(m for m in history if m.role == "assistant" and m.id > turn.user["id"])




async def test_sigterm_finishes_what_it_can_and_saves_the_rest(database_url: str,
                                                               tmp_path: Path) -> None:
    grace = 2.0
    async with FakeOpenAIServer(token_delay=TOKEN_DELAY) as model:
        settings = Settings(data_dir=tmp_path, database_url=database_url)
        await seed_global(settings, MOHIT)
        server = ServeProcess(database_url, tmp_path, {
            **provider_environment(model), "PERSONAE_SHUTDOWN_GRACE_SECONDS": str(grace)})
        with serve_processes(server):
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                soon = " ".join(f"soon{i}" for i in range(20))  # 1 s: inside the grace
                turns = await open_turns(client, "mohit", [soon, soon, LONG, LONG, LONG, LONG])
                socket_turn = turns.pop()
                tasks = [asyncio.create_task(stream_turn(client, t)) for t in turns]
                tasks.append(asyncio.create_task(
                    websocket_turn(server.url, socket_turn)))
                await until(lambda: all(t.moments for t in [*turns, socket_turn]),
                             "every reply to start")
                server.terminate()
                signalled = time.monotonic()
                refused = await _new_turn_refused(server.url, turns[0].session_id)
                await asyncio.gather(*tasks)
                assert all(t.status == 200 for t in turns), [t.status for t in turns]
                exit_code = await asyncio.to_thread(server.wait, grace + 15)
        assert exit_code in (0, -15) and time.monotonic() - signalled < grace + 10
        assert refused
        stored = await histories(settings, [t.session_id for t in [*turns, socket_turn]])
        for turn in turns:
            reply = _reply_to(turn, stored[turn.session_id])
            assert turn.final is not None, "every SSE reply ended with an event"
            if turn.text == soon:  # finished during the grace period
                assert turn.final["type"] == "done" and turn.moments[-1][0] > signalled
                assert (reply.status, reply.content) == ("complete", soon)
            else:  # stopped at its end, saved with exactly what was sent
                assert turn.final["error"]["code"] == "shutting_down"
                assert turn.final["message"]["status"] == "interrupted"
                assert (reply.status, reply.content) == ("interrupted", turn.seen)
        # uvicorn closes WebSockets at the signal: that reply is saved interrupted at once
        reply = _reply_to(socket_turn, stored[socket_turn.session_id])
        assert socket_turn.broken and reply.status == "interrupted"
        assert reply.content.startswith(socket_turn.seen)
        assert not [m for h in stored.values() for m in h if m.status == "streaming"]


async def _new_turn_refused(url: str, session_id: str) -> bool:
    """Once stopping, the server takes no new turn: the connection is refused or dropped
    (uvicorn closes its listener) or the answer is 503 ``shutting_down``; never a
    reply, a 500 or a hang."""
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            answer = await client.post(f"/v1/sessions/{session_id}/messages",
                                       json={"content": "one more"})
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
        return True
    return answer.status_code == 503 and answer.json()["error"]["code"] == "shutting_down"
