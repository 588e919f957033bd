"""Crash drills for conversations: kill -9 and SIGTERM with replies streaming.

kill -9: two ``personae serve`` processes (nodes A, lease 30 s, and B, lease 3 s; each
named after host and port) share one database; ``--sessions`` sessions (half on each)
stream a turn over SSE from a slow loopback model (20 words/s), a fifth of them short
enough to finish first. Once the long ones have streamed ``--stream-seconds``, both
servers are killed with SIGKILL, their rows are read with the store, A is started
again on its port, and every session is asked for a new turn until it takes one.
SIGTERM: one server, grace period 2 s, two replies that finish within it and three
that cannot, plus one over a WebSocket (which uvicorn closes at the signal).

Printed per item: ``attempted``, ``failed`` and ``lost``. Targets: 0 acknowledged user
messages lost, 0 completed turns lost, 0 in-flight replies without a row, every text a
client had received more than 1 s before the kill saved (also reported without the
0.3 s allowance for the write itself), every session taking a new turn within 30 s of
the restart (on the first request for the restarted node's), and on SIGTERM none lost.

Run: ``.venv/bin/python bench/crash_drill.py [--sessions 20]``; with
``PERSONAE_BENCH_POSTGRES_URL`` set, the drills run on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from _common import ROOT, Report, parse_args, sqlite_url

sys.path.insert(0, str(ROOT))
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
from tests.support.servers import ServeProcess, serve_processes

POSTGRES_ENV = "PERSONAE_BENCH_POSTGRES_URL"
TOKEN_DELAY = 0.05
LONG = " ".join(f"long{i}" for i in range(400))
SHORT = " ".join(f"short{i}" for i in range(8))
SOON = " ".join(f"soon{i}" for i in range(20))  # 1 s: finishes inside a 2 s grace
FLUSH_SECONDS = 1.0
WRITE_ALLOWANCE = 0.3
ACCEPT_BOUND = 30.0
GRACE = 2.0
PERSONA = {"id": "drill", "name": "Drill", "language": "en", "greetings": ["Hello."]}




@dataclass
class Tally:
    attempted: int = 0
    failed: int = 0
    lost: int = 0

    def line(self) -> str:
        return f"attempted={self.attempted} failed={self.failed} lost={self.lost}"














def _reply(turn: Turn, history: list[MessageRecord]) -> MessageRecord | None:
    after = turn.user["id"] if turn.user else None
    return next((m for m in history if m.role == "assistant" and after is not None
                 and m.id > after), None)


def _user_stored(turn: Turn, history: list[MessageRecord]) -> bool:
    return turn.user is not None and any(m.id == turn.user["id"] and m.content == turn.text
                                         for m in history)


async def _accepting(client: httpx.AsyncClient, turn: Turn) -> tuple[float | None, int]:
    """Seconds until the session takes a new turn (None past ``ACCEPT_BOUND``), and the
    requests it took."""
    started, attempts = time.monotonic(), 0
    while time.monotonic() - started < ACCEPT_BOUND:
        attempts += 1
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.post(f"/v1/sessions/{turn.session_id}/messages",
                                       json={"content": "are you back"})
            if answer.status_code == 200:
                return time.monotonic() - started, attempts
        await asyncio.sleep(0.2)
    return None, attempts


async def kill_drill(database_url: str, data_dir: Path, model: FakeOpenAIServer,
                     sessions: int, stream_seconds: float, prefix: str, report: Report) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    await seed_global(settings, PERSONA)
    env = provider_environment(model, 60)
    # personae serve names each node after host and port; A comes back on its port
    a = ServeProcess(database_url, data_dir, env)
    b = ServeProcess(database_url, data_dir, {**env, "PERSONAE_TURN_LEASE_SECONDS": "3"})
    with serve_processes(a, b):
        turns, killed_at = await _stream_and_kill((a, b), sessions, stream_seconds)
        stored = await histories(settings, [t.session_id for t in turns])
        a.start()
        restarted = time.monotonic()
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as client:
            waits = await asyncio.gather(*[_accepting(client, t) for t in turns])
        report.value(f"{prefix}restart_s", restarted - killed_at, 2)
    after = await histories(settings, [t.session_id for t in turns])
    _report_kill(turns, stored, after, killed_at, waits, sessions // 2, prefix, report)


async def _stream_and_kill(servers: tuple[ServeProcess, ...], sessions: int,
                           stream_seconds: float) -> tuple[list[Turn], float]:
    clients = [httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers]
    try:
        share = sessions // len(servers)
        short = max(1, share // 5)
        turns = [t for c in clients for t in await open_turns(c, "drill", [SHORT] * short
                                                          + [LONG] * (share - short))]
        tasks = [asyncio.create_task(stream_turn(clients[i // share], t))
                 for i, t in enumerate(turns)]
        await until(lambda: all(t.moments and time.monotonic() - t.moments[0][0]
                                > stream_seconds for t in turns if t.text == LONG)
                    and all(t.final for t in turns if t.text == SHORT),
                    "the long replies to stream and the short ones to finish", 60)
        for server in servers:
            server.kill()
        killed_at = time.monotonic()
        await asyncio.gather(*tasks)
        return turns, killed_at
    finally:
        for client in clients:
            await client.aclose()


def _report_kill(turns: list[Turn], stored: dict[str, list[MessageRecord]],
                 after: dict[str, list[MessageRecord]], killed_at: float,
                 waits: list[tuple[float | None, int]], on_a: int, prefix: str,
                 report: Report) -> None:
    users, completed, in_flight, older, strict = Tally(), Tally(), Tally(), Tally(), Tally()
    for turn in turns:
        history = stored[turn.session_id]
        users.attempted += turn.user is not None
        users.lost += turn.user is not None and not _user_stored(turn, history)
        reply = _reply(turn, history)
        if turn.final is not None and turn.final["type"] == "done":
            completed.attempted += 1
            completed.lost += not (reply and reply.status == "complete"
                                   and reply.content == turn.final["message"]["content"])
            continue
        in_flight.attempted += 1
        in_flight.lost += reply is None
        final = _reply(turn, after[turn.session_id])
        in_flight.failed += final is None or final.status != "interrupted"
        for tally, allowance in ((older, WRITE_ALLOWANCE), (strict, 0.0)):
            tally.attempted += 1
            saved = reply.content if reply else ""
            tally.lost += not saved.startswith(
                turn.seen_before(killed_at - FLUSH_SECONDS - allowance))
    accepted = Tally(len(waits), sum(w is None for w, _ in waits))
    same_node = [w for w, _ in waits[:on_a] if w is not None]
    other_node = [w for w, _ in waits[on_a:] if w is not None]
    first_try = sum(attempts == 1 and w is not None for w, attempts in waits[:on_a])
    for name, tally in (("user_messages", users), ("completed_turns", completed),
                        ("in_flight_replies", in_flight), ("text_seen_over_1s", older),
                        ("text_seen_over_1s_strict", strict), ("sessions_accepting", accepted)):
        report.value(f"{prefix}{name}", tally.line())
    report.value(f"{prefix}accept_same_node_first_try", f"{first_try} of {on_a}")
    report.value(f"{prefix}accept_same_node_max_s", max(same_node, default=-1.0), 2)
    report.value(f"{prefix}accept_other_node_max_s", max(other_node, default=-1.0), 2)
    report.value(f"{prefix}chars_seen_at_kill_max", max(len(t.seen) for t in turns))
    report.check(f"{prefix}kill9_nothing_lost",
                 users.lost == completed.lost == in_flight.lost == older.lost == 0
                 and in_flight.failed == 0, "user messages, completed turns, in-flight rows, "
                                            "text seen over 1 s")
    report.check(f"{prefix}kill9_sessions_accept_again", accepted.failed == 0
                 and first_try == on_a, f"all within {ACCEPT_BOUND:.0f} s, the restarted "
                                        "node's on the first request")


async def sigterm_drill(database_url: str, data_dir: Path, model: FakeOpenAIServer,
                        prefix: str, report: Report) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    await seed_global(settings, PERSONA)
    server = ServeProcess(database_url, data_dir, {
        **provider_environment(model, 60), "PERSONAE_SHUTDOWN_GRACE_SECONDS": str(GRACE)})
    with serve_processes(server):
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            turns = await open_turns(client, "drill", [SOON, SOON, LONG, LONG, LONG, LONG])
            tasks = [asyncio.create_task(stream_turn(client, t)) for t in turns[:-1]]
            tasks.append(asyncio.create_task(websocket_turn(server.url, turns[-1])))
            await until(lambda: all(t.moments for t in turns), "every reply to start", 60)
            server.terminate()
            signalled = time.monotonic()
            await asyncio.gather(*tasks)
            await asyncio.to_thread(server.wait, GRACE + 20)
        report.value(f"{prefix}sigterm_exit_s", time.monotonic() - signalled, 2)
    stored = await histories(settings, [t.session_id for t in turns])
    finished, saved, users = Tally(), Tally(), Tally()
    for turn in turns:
        history = stored[turn.session_id]
        users.attempted += turn.user is not None
        users.lost += turn.user is not None and not _user_stored(turn, history)
        reply = _reply(turn, history)
        tally = finished if turn.text == SOON else saved
        tally.attempted += 1
        tally.lost += reply is None or not reply.content.startswith(turn.seen)
        if turn.text == SOON:
            tally.failed += reply is None or reply.status != "complete"
        else:
            tally.failed += reply is None or reply.status != "interrupted"
    for name, tally in (("sigterm_user_messages", users),
                        ("sigterm_replies_finishing_in_grace", finished),
                        ("sigterm_replies_saved_interrupted", saved)):
        report.value(f"{prefix}{name}", tally.line())
    report.check(f"{prefix}sigterm_nothing_lost", users.lost == finished.lost == saved.lost
                 == finished.failed == saved.failed == 0,
                 "short replies complete, the rest interrupted with what was sent")






@contextlib.asynccontextmanager
async def fresh_database(postgres_server: str | None, folder: Path) -> AsyncIterator[str]:
    """A new empty database: SQLite in ``folder``, or one made on the PostgreSQL server."""
    from tests.support import postgres

    await asyncio.to_thread(folder.mkdir, parents=True)
    if postgres_server is None:
        yield sqlite_url(folder)
        return
    async with postgres.temporary_database(postgres_server) as url:
        yield url


async def drills(args: Any, base: Path, report: Report) -> None:
    servers: list[tuple[str, str | None]] = [("", None)]
    if os.environ.get(POSTGRES_ENV, "").strip():
        servers.append(("postgres_", os.environ[POSTGRES_ENV].strip()))
    async with FakeOpenAIServer(token_delay=TOKEN_DELAY) as model:
        for prefix, server in servers:
            folder = base / (prefix or "sqlite_")
            async with fresh_database(server, folder / "kill") as url:
                await kill_drill(url, folder / "kill", model, args.sessions,
                                 args.stream_seconds, prefix, report)
            async with fresh_database(server, folder / "term") as url:
                await sigterm_drill(url, folder / "term", model, prefix, report)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--sessions", type=int, default=20),
        p.add_argument("--stream-seconds", type=float, default=3.0)))
    report = Report()
    with tempfile.TemporaryDirectory(prefix="crash-drill-") as tmp:
        asyncio.run(drills(args, Path(tmp), report))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
