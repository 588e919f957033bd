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
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from _common import ROOT, Report, parse_args, sqlite_url

sys.path.insert(0, str(ROOT))
from personae.config import Settings
from personae.conversations.store import MessageRecord
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
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
class Turn:
    session_id: str
    text: str
    user: dict[str, Any] | None = None
    moments: list[tuple[float, str]] = field(default_factory=list)
    final: dict[str, Any] | None = None

    @property
    def seen(self) -> str:
        return self.moments[-1][1] if self.moments else ""

    def seen_before(self, moment: float) -> str:
        return next((text for at, text in reversed(self.moments) if at <= moment), "")

    def record(self, event: dict[str, Any]) -> None:
        if event["type"] == "message":
            self.user = event["message"]
        elif event["type"] == "delta":
            self.moments.append((time.monotonic(), self.seen + event["text"]))
        elif event["type"] in {"done", "error"}:
            self.final = event


@dataclass
class Tally:
    attempted: int = 0
    failed: int = 0
    lost: int = 0

    def line(self) -> str:
        return f"attempted={self.attempted} failed={self.failed} lost={self.lost}"


async def _sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


async def _stream(client: httpx.AsyncClient, turn: Turn) -> None:
    with contextlib.suppress(httpx.HTTPError):
        async with client.stream("POST", f"/v1/sessions/{turn.session_id}/messages",
                                 json={"content": turn.text, "stream": True}) as response:
            async for event in _sse(response):
                turn.record(event)


async def _websocket(url: str, turn: Turn) -> None:
    async with connect(url.replace("http", "ws") + f"/v1/sessions/{turn.session_id}/ws") as ws:
        await ws.recv()  # ready
        await ws.send(json.dumps({"type": "message", "content": turn.text}))
        with contextlib.suppress(ConnectionClosed):
            while True:
                turn.record(json.loads(await ws.recv()))


async def _open(client: httpx.AsyncClient, texts: list[str]) -> list[Turn]:
    turns = []
    for text in texts:
        opened = (await client.post("/v1/sessions", json={"persona_id": "drill"})).json()
        turns.append(Turn(opened["session"]["id"], text))
    return turns


async def _until(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - other tasks
        await asyncio.sleep(0.05)


async def _histories(settings: Settings, turns: list[Turn]) -> dict[str, list[MessageRecord]]:
    runtime = await Runtime.open(settings, watch=False)
    try:
        admin = await runtime.auth.local_admin()
        return {t.session_id: await runtime.conversations.history(admin, t.session_id)
                for t in turns}
    finally:
        await runtime.close()


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
    await _seed(settings)
    env = _environment(model)
    # personae serve names each node after host and port; A comes back on its port
    a = ServeProcess(database_url, data_dir, env)
    b = ServeProcess(database_url, data_dir, {**env, "PERSONAE_TURN_LEASE_SECONDS": "3"})
    with serve_processes(a, b):
        turns, killed_at = await _stream_and_kill((a, b), sessions, stream_seconds)
        stored = await _histories(settings, turns)
        a.start()
        restarted = time.monotonic()
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as client:
            waits = await asyncio.gather(*[_accepting(client, t) for t in turns])
        report.value(f"{prefix}restart_s", restarted - killed_at, 2)
    after = await _histories(settings, turns)
    _report_kill(turns, stored, after, killed_at, waits, sessions // 2, prefix, report)


async def _stream_and_kill(servers: tuple[ServeProcess, ...], sessions: int,
                           stream_seconds: float) -> tuple[list[Turn], float]:
    clients = [httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers]
    try:
        share = sessions // len(servers)
        short = max(1, share // 5)
        turns = [t for c in clients for t in await _open(c, [SHORT] * short
                                                          + [LONG] * (share - short))]
        tasks = [asyncio.create_task(_stream(clients[i // share], t))
                 for i, t in enumerate(turns)]
        await _until(lambda: all(t.moments and time.monotonic() - t.moments[0][0]
                                 > stream_seconds for t in turns if t.text == LONG)
                     and all(t.final for t in turns if t.text == SHORT))
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
    await _seed(settings)
    server = ServeProcess(database_url, data_dir, {
        **_environment(model), "PERSONAE_SHUTDOWN_GRACE_SECONDS": str(GRACE)})
    with serve_processes(server):
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            turns = await _open(client, [SOON, SOON, LONG, LONG, LONG, LONG])
            tasks = [asyncio.create_task(_stream(client, t)) for t in turns[:-1]]
            tasks.append(asyncio.create_task(_websocket(server.url, turns[-1])))
            await _until(lambda: all(t.moments for t in turns))
            server.terminate()
            signalled = time.monotonic()
            await asyncio.gather(*tasks)
            await asyncio.to_thread(server.wait, GRACE + 20)
        report.value(f"{prefix}sigterm_exit_s", time.monotonic() - signalled, 2)
    stored = await _histories(settings, turns)
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


def _environment(model: FakeOpenAIServer) -> dict[str, str]:
    providers = {"fake": {"kind": "openai", "base_url": model.base_url, "api_key": "k",
                          "model": "fake", "max_retries": 0, "timeout_seconds": 60}}
    return {"PERSONAE_PROVIDERS": json.dumps(providers), "PERSONAE_DEFAULT_PROVIDER": "fake"}


async def _seed(settings: Settings) -> None:
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.personas.create(await runtime.auth.local_admin(), PERSONA,
                                      global_scope=True)
    finally:
        await runtime.close()


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
