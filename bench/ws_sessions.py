"""Concurrent WebSocket sessions against a loopback upstream: errors, mix-ups and latency.

Targets: 1,000 concurrent WebSocket sessions, three turns each, against a loopback
OpenAI-protocol upstream: 0 errors and 0 replies delivered to the wrong session (each
reply must carry its own session's nonce and no other); server CPU per turn <= 5 ms;
time to first token p99 <= 2x the upstream's own p99, measured alone under the same
burst in the same run (so Personae's overhead reads as a ratio).

Layout: the fake upstream (``personae.providers.fake.openai_server``) and the Personae
API (uvicorn, SQLite in a temp dir) run as their own processes; the server is pinned to
CPU 0, the upstream and the client processes to CPU 1. Sessions are created over REST
with bounded concurrency; then every client process opens its share of the WebSockets,
all processes meet at a barrier, and every session plays its turns at once.

Errors are ``error`` events, failed handshakes, closed sockets and turn timeouts. A
``turn_in_progress`` refusal of a message sent right after ``done`` counts as an error
too, but the message is re-sent (with backoff, within the turn timeout) so that later
turns are still measured. Every session's stored history is checked over REST at the end.

Run: ``.venv/bin/python bench/ws_sessions.py [--quick] [--sessions N] [--clients P]``.
With ``PERSONAE_BENCH_POSTGRES_URL`` set, the scenario is repeated on a fresh database
created on that PostgreSQL server (lines prefixed ``postgres_``) with ``--api-processes``
API processes (default 2), all pinned to CPU 0: session ``i`` talks to process
``i % N``, sessions are created and histories read through the first, and the server CPU
is the sum of all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import multiprocessing
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from _common import (
    CLIENT_CPU,
    HOST,
    ROOT,
    Report,
    Server,
    admin_key,
    free_port,
    percentile,
    personae_env,
    pin_self,
    process_cpu_seconds,
    sqlite_url,
    start_server,
    stop_server,
    taskset_prefix,
)

FULL_SESSIONS, QUICK_SESSIONS = 1000, 100
TURNS = 3
UPSTREAM_LATENCY = 0.05  # seconds before the upstream's first byte
UPSTREAM_TOKEN_DELAY = 0.002  # seconds between its deltas
CREATE_CONCURRENCY = 32  # REST session creation in flight at once
SOLO_TURNS = 20  # unloaded measurements: sequential requests / turns
CONNECT_TIMEOUT = 60.0  # one WebSocket handshake plus its "ready" event
TURN_TIMEOUT = 60.0  # one turn, send to "done"
PHASE_LIMIT = 600.0  # bound on any whole phase (connect, turns, result collection)
BUSY = "error:turn_in_progress"
BUSY_BACKOFF = 0.01  # first pause (s) before re-sending a refused message; doubles
POSTGRES_ENV = "PERSONAE_BENCH_POSTGRES_URL"
CPU_MS_PER_TURN = 5.0  # target: server CPU per streamed turn
TTFT_RATIO_P99 = 2.0  # target: time to first token p99 against the upstream alone
TRACEBACK = "Traceback (most recent call last):"
NONCE_RE = re.compile(r"n[0-9a-f]{6}-s\d+-t\d+-[0-9a-f]{8}")
PERSONA = {
    "id": "bench-echo", "name": "Echo Bench", "language": "en", "role": "test partner",
    "description": "A persona for load tests; its upstream repeats what it is told.",
    "system_prompt": "Answer briefly and repeat any code the user gives you exactly.",
    "greetings": ["Hello! Give me a code and I will read it back."],
    "model": {"temperature": 0, "max_tokens": 64},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SESSIONS} sessions")
    parser.add_argument("--sessions", type=int, help=f"sessions (default {FULL_SESSIONS})")
    parser.add_argument("--clients", type=int, default=2,
                        help="client processes sharing the sessions (default 2)")
    parser.add_argument("--api-processes", type=int, default=2,
                        help="API processes of the PostgreSQL run (default 2; SQLite: 1)")
    parser.add_argument("--no-sqlite", action="store_true",
                        help=f"only the PostgreSQL run (needs {POSTGRES_ENV})")
    args = parser.parse_args()
    if args.api_processes < 1:
        parser.error("--api-processes: at least 1")
    return args


def raise_open_files(wanted: int) -> int:
    """Lift the soft open-files limit towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def make_nonce(run_id: str, index: int, turn: int) -> str:
    return f"n{run_id}-s{index}-t{turn}-{secrets.token_hex(4)}"


def prompt_for(nonce: str) -> str:
    return f"Please read this code back to me exactly: {nonce} thank you"


def misdelivered(nonce: str, *texts: str) -> bool:
    """True unless every text carries ``nonce`` and no other nonce."""
    for text in texts:
        found = NONCE_RE.findall(text)
        if nonce not in found or any(other != nonce for other in found):
            return True
    return False


# -- measurements ------------------------------------------------------------------

@dataclass
class Outcome:
    """One turn (or one direct upstream request)."""

    ttft_ms: float | None = None
    total_ms: float | None = None
    error: str | None = None
    detail: str = ""
    wrong: bool = False


@dataclass
class Tally:
    """What one client process saw; merged across processes by the parent."""

    ttft_ms: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    turns_ok: int = 0
    wrong: int = 0
    connected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # first message of each kind
    cpu_s: float = 0.0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.wrong += int(outcome.wrong)
        if outcome.error is not None:
            self.fail(outcome.error, outcome.detail)
            return
        self.turns_ok += 1
        if outcome.ttft_ms is not None:
            self.ttft_ms.append(outcome.ttft_ms)
        if outcome.total_ms is not None:
            self.turn_ms.append(outcome.total_ms)

    def fail(self, kind: str, detail: str = "") -> None:
        """Count an error; keep the first message of each kind as a sample."""
        self.samples.setdefault(kind, detail[:300])
        self.errors[kind] += 1

    def merge(self, other: Tally) -> None:
        self.ttft_ms += other.ttft_ms
        self.turn_ms += other.turn_ms
        self.turns_ok += other.turns_ok
        self.wrong += other.wrong
        self.connected += other.connected
        self.errors.update(other.errors)
        self.samples = {**other.samples, **self.samples}
        self.cpu_s += other.cpu_s
        self.wall_s = max(self.wall_s, other.wall_s)


# -- processes -----------------------------------------------------------------------

def start_upstream() -> Server:
    """The fake OpenAI server as its own process, pinned with the clients."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="bench-upstream-", suffix=".log")[1])
    command = [*taskset_prefix(CLIENT_CPU), sys.executable, "-m",
               "personae.providers.fake.openai_server", "--host", HOST, "--port", str(port),
               "--latency", str(UPSTREAM_LATENCY), "--token-delay", str(UPSTREAM_TOKEN_DELAY)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = Server("upstream", process, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/v1/models", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"the fake upstream did not start:\n{server.log_tail()}")


def server_env(data_dir: Path, database_url: str, upstream: Server) -> dict[str, str]:
    providers = {"upstream": {"kind": "openai", "base_url": f"{upstream.base_url}/v1",
                              "api_key": "bench", "model": "fake-model", "max_retries": 0,
                              "timeout_seconds": TURN_TIMEOUT}}
    return {**personae_env(data_dir, database_url), "PERSONAE_PROVIDERS": json.dumps(providers),
            "PERSONAE_DEFAULT_PROVIDER": "upstream"}


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` on uvloop when installed (cheaper clients, more honest numbers)."""
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


# -- REST setup and checks -----------------------------------------------------------

def rest_client(base_url: str, key: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CREATE_CONCURRENCY)
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                             timeout=60, limits=limits)


async def bounded(count: int, work: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """``work(i)`` for every ``i < count``, at most CREATE_CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(index: int) -> Any:
        async with gate:
            return await work(index)

    async with asyncio.timeout(PHASE_LIMIT):
        return await asyncio.gather(*(one(i) for i in range(count)))


async def create_sessions(base_url: str, key: str, count: int) -> list[str]:
    """The persona, then ``count`` sessions with it (REST, bounded concurrency)."""
    async with rest_client(base_url, key) as client:
        created = await client.post("/v1/personas", json={"definition": PERSONA})
        created.raise_for_status()
        persona_id = created.json()["id"]  # in the caller's namespace: "<user>/bench-echo"

        async def one(index: int) -> str:
            response = await client.post("/v1/sessions", json={
                "persona_id": persona_id, "meta": {"bench": index}})
            response.raise_for_status()
            return str(response.json()["session"]["id"])

        return await bounded(count, one)


async def check_histories(base_url: str, key: str, sessions: list[tuple[int, str]],
                          turns: int) -> tuple[int, int]:
    """Stored histories read back: (incomplete, foreign). Incomplete: not greeting +
    ``turns`` complete exchanges. Foreign: holding another session's nonce."""
    async with rest_client(base_url, key) as client:

        async def verdict(position: int) -> tuple[bool, bool]:
            index, session_id = sessions[position]
            response = await client.get(f"/v1/sessions/{session_id}/messages")
            if response.status_code != 200:
                return True, False
            found = response.json()["data"]
            replies = [m for m in found if m["role"] == "assistant" and m["status"] == "complete"]
            nonces = {n for m in found for n in NONCE_RE.findall(m["content"])}
            foreign = any(f"-s{index}-" not in n for n in nonces)
            return (len(found) != 1 + 2 * turns or len(replies) != 1 + turns
                    or len(nonces) != turns), foreign

        verdicts = await bounded(len(sessions), verdict)
        return sum(v[0] for v in verdicts), sum(v[1] for v in verdicts)


# -- one WebSocket session -------------------------------------------------------------

async def open_socket(url: str, key: str, session_id: str, tally: Tally
                      ) -> ClientConnection | None:
    """Connect and wait for ``ready``; a failure is counted, not raised."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {key}"},
                               open_timeout=None, ping_interval=None, compression=None,
                               proxy=None)
            ready = json.loads(await ws.recv())
    except (OSError, TimeoutError, WebSocketException) as exc:
        tally.fail(f"connect:{type(exc).__name__}", str(exc))
        return None
    if ready.get("type") != "ready" or ready.get("session", {}).get("id") != session_id:
        tally.fail("not_ready", json.dumps(ready)[:200])
        await ws.close()
        return None
    tally.connected += 1
    return ws


async def one_turn(ws: ClientConnection, nonce: str) -> Outcome:
    """Send one message and read events up to ``done``/``error``."""
    sent = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    wrong = False
    try:
        await ws.send(json.dumps({"type": "message", "content": prompt_for(nonce)}))
        async with asyncio.timeout(TURN_TIMEOUT):
            while True:
                event = json.loads(await ws.recv())
                kind = event.get("type")
                if kind == "delta":
                    first = first or time.perf_counter()
                    parts.append(str(event.get("text", "")))
                elif kind == "message":
                    wrong |= misdelivered(nonce, str(event["message"]["content"]))
                elif kind == "done":
                    return finish_turn(nonce, sent, first, parts, event, wrong)
                elif kind == "error":
                    return Outcome(error=f"error:{event['error']['code']}",
                                   detail=event["error"]["message"], wrong=wrong)
    except TimeoutError:
        return Outcome(error="timeout", detail=f"no done within {TURN_TIMEOUT:g}s", wrong=wrong)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else "none"
        return Outcome(error=f"closed:{code}", detail=str(exc), wrong=wrong)


def finish_turn(nonce: str, sent: float, first: float | None, parts: list[str],
                done: dict[str, Any], wrong: bool) -> Outcome:
    now = time.perf_counter()
    reply = str(done["message"]["content"])
    wrong |= misdelivered(nonce, reply, "".join(parts))
    if first is None:
        return Outcome(error="no_delta", detail=reply[:100], wrong=wrong)
    return Outcome((first - sent) * 1000, (now - sent) * 1000, wrong=wrong)


async def resend_when_free(ws: ClientConnection, nonce: str) -> Outcome:
    """Re-send, backing off, while the server still refuses with ``turn_in_progress``."""
    deadline = time.monotonic() + TURN_TIMEOUT
    delay = BUSY_BACKOFF
    while True:
        await asyncio.sleep(delay)
        outcome = await one_turn(ws, nonce)
        if outcome.error != BUSY or time.monotonic() > deadline:
            return outcome
        delay = min(2 * delay, 0.25)


async def converse(ws: ClientConnection, run_id: str, index: int, turns: int,
                   tally: Tally) -> None:
    """``turns`` sequential turns; a failed turn ends the session (the rest are unplayed).

    A ``turn_in_progress`` refusal of a message sent after ``done`` is an error (the
    protocol says the session is free once ``done`` arrives) and is counted as one, but
    the turn is retried a few times so the remaining turns are still measured.
    """
    try:
        for turn in range(turns):
            outcome = await one_turn(ws, make_nonce(run_id, index, turn))
            if outcome.error == BUSY:
                tally.fail(f"{BUSY}_after_done", outcome.detail)
                outcome = await resend_when_free(ws, make_nonce(run_id, index, turn))
            tally.add(outcome)
            if outcome.error is not None:
                return
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


# -- direct upstream requests (the baseline) ---------------------------------------------

def upstream_body(nonce: str) -> dict[str, Any]:
    system = "You are Echo Bench, a test partner. " + str(PERSONA["system_prompt"])
    return {"model": "fake-model", "stream": True, "max_tokens": 64, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": prompt_for(nonce)}]}


async def upstream_request(url: str, nonce: str) -> Outcome:
    """One streaming chat completion, timed to its first content delta and to its end.

    A bare HTTP/1.1 request on asyncio streams (one connection each, closed after):
    an ``httpx`` client spent ~12 ms of CPU per request at 1,000 concurrent streams,
    which made this baseline measure the client rather than the upstream.
    """
    target = urlsplit(url)
    payload = json.dumps(upstream_body(nonce)).encode()
    head = (f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    sent, status = time.perf_counter(), b""
    first: float | None = None
    parts: list[str] = []
    try:
        async with asyncio.timeout(TURN_TIMEOUT):
            reader, writer = await asyncio.open_connection(target.hostname, target.port)
            try:
                writer.write(head + payload)
                status = await reader.readline()
                while line := await reader.readline():
                    for text in sse_texts(line):
                        first = first or time.perf_counter()
                        parts.append(text)
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return Outcome(error=f"upstream:{type(exc).__name__}", detail=str(exc))
    if first is None:
        return Outcome(error="upstream:no_delta", detail=status.decode(errors="replace"))
    now = time.perf_counter()
    return Outcome((first - sent) * 1000, (now - sent) * 1000,
                   wrong=misdelivered(nonce, "".join(parts)))


def sse_texts(line: bytes) -> list[str]:
    """The content deltas of one ``data: {...}`` line of a chat-completions stream."""
    if not line.startswith(b"data: {"):
        return []
    choices = json.loads(line[6:]).get("choices") or []
    return [text for choice in choices if (text := (choice.get("delta") or {}).get("content"))]


async def upstream_sessions(url: str, run_id: str, indexes: list[int], turns: int,
                            tally: Tally) -> None:
    """Each index plays ``turns`` sequential direct requests; all indexes at once."""

    async def session(index: int) -> None:
        for turn in range(turns):
            outcome = await upstream_request(url, make_nonce(run_id, index, turn))
            tally.add(outcome)
            if outcome.error is not None:
                return

    await asyncio.gather(*(session(i) for i in indexes))


# -- client processes -------------------------------------------------------------------

@dataclass(frozen=True)
class ClientSpec:
    mode: str  # "ws": Personae sessions; "upstream": direct requests to the upstream
    urls: tuple[str, ...]  # ws://.../v1/sessions of each API process, or the upstream's
    key: str
    sessions: list[tuple[int, str]]  # (index, session id)
    turns: int
    run_id: str


async def client_main(spec: ClientSpec, barrier: threading.Barrier) -> Tally:
    """Open every socket, meet the other processes at the barrier, then play all turns."""
    tally = Tally()
    sockets: list[ClientConnection | None] = []
    if spec.mode == "ws":
        sockets = list(await asyncio.gather(*(
            open_socket(f"{spec.urls[index % len(spec.urls)]}/{sid}/ws", spec.key, sid, tally)
            for index, sid in spec.sessions)))
    try:
        await asyncio.to_thread(barrier.wait, PHASE_LIMIT)
    except threading.BrokenBarrierError:
        tally.fail("barrier", "another client process did not reach the start")
    cpu, started = time.process_time(), time.perf_counter()
    try:
        async with asyncio.timeout(PHASE_LIMIT):
            if spec.mode == "upstream":
                await upstream_sessions(spec.urls[0], spec.run_id,
                                        [i for i, _ in spec.sessions], spec.turns, tally)
            else:
                await asyncio.gather(*(converse(ws, spec.run_id, index, spec.turns, tally)
                                       for (index, _), ws in zip(spec.sessions, sockets,
                                                                 strict=True) if ws))
    except TimeoutError:
        tally.fail("phase_limit", f"turns still running after {PHASE_LIMIT:g}s")
    tally.cpu_s, tally.wall_s = time.process_time() - cpu, time.perf_counter() - started
    return tally


def client_process(spec: ClientSpec, barrier: threading.Barrier,
                   results: multiprocessing.Queue[Tally]) -> None:
    pin_self(CLIENT_CPU)
    try:
        tally = run_async(client_main(spec, barrier))
    except BaseException as exc:  # reported, never lost: the parent waits for every result
        tally = Tally()
        tally.fail("client_crash", repr(exc))
    results.put(tally)


def run_clients(spec: ClientSpec, processes: int, server_pids: tuple[int, ...] = ()
                ) -> Tally:
    """Split the sessions across ``processes`` forked clients; merge what they saw.

    With ``server_pids``, the servers' CPU time (summed) from the start barrier (every
    socket open) to the last result is recorded as ``server_cpu_s``.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    results: multiprocessing.Queue[Tally] = context.Queue()
    workers = [context.Process(target=client_process, daemon=True, args=(
        ClientSpec(spec.mode, spec.urls, spec.key, spec.sessions[i::processes], spec.turns,
                   spec.run_id), barrier, results)) for i in range(processes)]
    for worker in workers:
        worker.start()
    merged = Tally()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(PHASE_LIMIT)
        cpu = sum(process_cpu_seconds(pid) for pid in server_pids)
        for _ in workers:
            merged.merge(results.get(timeout=2 * PHASE_LIMIT))
        merged.server_cpu_s = sum(process_cpu_seconds(pid) for pid in server_pids) - cpu
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=10)
    return merged


# -- unloaded baselines -------------------------------------------------------------------

async def solo_upstream(url: str, run_id: str) -> Tally:
    tally = Tally()
    for turn in range(SOLO_TURNS + 1):  # the first request warms the server up
        outcome = await upstream_request(url, make_nonce(run_id, 0, turn))
        if turn:
            tally.add(outcome)
    return tally


async def solo_session(ws_url: str, key: str, session_id: str, run_id: str) -> Tally:
    """One session's sequential turns on an idle server, after one warm-up turn."""
    tally, warm = Tally(), Tally()
    ws = await open_socket(f"{ws_url}/{session_id}/ws", key, session_id, tally)
    if ws is not None:
        await converse(ws, run_id, 0, 1, warm)
        tally.merge(Tally(errors=warm.errors, samples=warm.samples, wrong=warm.wrong))
    ws = await open_socket(f"{ws_url}/{session_id}/ws", key, session_id, tally)
    if ws is not None:
        await converse(ws, run_id, 0, SOLO_TURNS, tally)
    return tally


# -- orchestration -------------------------------------------------------------------------

@dataclass
class Baseline:
    solo: Tally
    loaded: Tally


def measure_upstream(upstream: Server, sessions: int, clients: int, run_id: str) -> Baseline:
    """The upstream alone: sequential requests, then the load's shape without Personae."""
    url = f"{upstream.base_url}/v1/chat/completions"
    solo = run_async(solo_upstream(url, run_id))
    spec = ClientSpec("upstream", (url,), "", [(i, "") for i in range(1, sessions + 1)], TURNS,
                      run_id)
    return Baseline(solo, run_clients(spec, clients))


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on the given server, dropped afterwards."""
    sys.path.insert(0, str(ROOT))
    from tests.support import postgres

    url = postgres.create_database_sync(server_url)
    try:
        yield url
    finally:
        postgres.drop_database_sync(server_url, postgres.database_name(url))


def log_tracebacks(server: Server) -> int:
    """Count the server's tracebacks; print each distinct exception once, with the
    project's own frames (where the failure came from)."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return 0
    blocks = text.split(TRACEBACK)[1:]
    seen: Counter[str] = Counter()
    for block in blocks:
        lines = block.splitlines()
        ends = [line for line in lines[1:] if line.strip() and not line[0].isspace()]
        exception = ends[0] if ends else "?"
        seen[exception] += 1
        if seen[exception] == 1:
            frames = [f"{a.strip()} | {b.strip()}" for a, b in pairwise([*lines, ""])
                      if "/personae/" in a and a.lstrip().startswith("File")]
            print(f"--- server traceback: {exception}\n" + "\n".join(frames), flush=True)
    for exception, count in seen.most_common():
        print(f"--- {count} x {exception}", flush=True)
    return len(blocks)


def run_scenario(prefix: str, database_url: str, data_dir: Path, upstream: Server,
                 args: argparse.Namespace, baseline: Baseline, report: Report,
                 processes: int = 1) -> None:
    """``processes`` Personae servers on one store: create the sessions, measure, check,
    report."""
    key = admin_key(database_url)
    servers: list[Server] = []
    try:
        for number in range(processes):  # one after the other: the first one migrates
            servers.append(start_server(
                f"personae-{prefix or 'sqlite'}{number}", "personae.api.app:create_app",
                server_env(data_dir, database_url, upstream)))
        result = measure_servers(servers, key, args)
        result.tracebacks = sum(log_tracebacks(server) for server in servers)
    finally:
        for server in servers:
            stop_server(server)
    report_scenario(prefix, result, baseline, report)


@dataclass
class ScenarioResult:
    sessions: int
    clients: int
    processes: int
    create_s: float
    solo: Tally
    load: Tally
    history_incomplete: int
    history_foreign: int
    tracebacks: int = 0


def measure_servers(servers: list[Server], key: str, args: argparse.Namespace
                    ) -> ScenarioResult:
    """Sessions made and histories read through the first server; session ``i`` talks
    to server ``i % len(servers)``; the unloaded turns go to the first."""
    count = args.sessions or (QUICK_SESSIONS if args.quick else FULL_SESSIONS)
    run_id = secrets.token_hex(3)
    first = servers[0]
    started = time.perf_counter()
    ids = run_async(create_sessions(first.base_url, key, count + 1))
    create_s = time.perf_counter() - started
    urls = tuple(f"ws://{HOST}:{server.port}/v1/sessions" for server in servers)
    solo = run_async(solo_session(urls[0], key, ids[0], run_id))  # unloaded, on session 0
    sessions = [(i, ids[i]) for i in range(1, count + 1)]
    load = run_clients(ClientSpec("ws", urls, key, sessions, TURNS, run_id), args.clients,
                       tuple(server.process.pid for server in servers))
    incomplete, foreign = run_async(check_histories(first.base_url, key, sessions, TURNS))
    return ScenarioResult(count, args.clients, len(servers), create_s, solo, load,
                          incomplete, foreign)


def p(values: list[float], pct: float) -> float:
    return percentile(values, pct) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def report_scenario(prefix: str, r: ScenarioResult, base: Baseline, report: Report) -> None:
    v = report.value
    expected = r.sessions * TURNS
    errors = sum(r.load.errors.values()) + sum(r.solo.errors.values())
    v(f"{prefix}sessions", r.sessions)
    v(f"{prefix}api_processes", r.processes)
    v(f"{prefix}client_processes", r.clients)
    v(f"{prefix}session_create_s", r.create_s, 2)
    v(f"{prefix}sockets_connected", r.load.connected)
    v(f"{prefix}turns", f"{r.load.turns_ok} of {expected}")
    v(f"{prefix}errors", errors)
    if errors:
        v(f"{prefix}error_kinds", json.dumps(dict(r.load.errors + r.solo.errors)))
        for kind, message in {**r.solo.samples, **r.load.samples}.items():
            v(f"{prefix}error_sample[{kind}]", message)
    v(f"{prefix}wrong_session_replies", r.load.wrong + r.solo.wrong)
    v(f"{prefix}histories_incomplete", r.history_incomplete)
    v(f"{prefix}histories_with_foreign_nonce", r.history_foreign)
    v(f"{prefix}server_log_tracebacks", r.tracebacks)
    report_latency(prefix, r, base)
    clean = (errors == 0 and r.load.turns_ok == expected and r.solo.turns_ok == SOLO_TURNS
             and r.history_incomplete == 0 and r.tracebacks == 0)
    report.check(f"{prefix}ws_sessions_errors", clean,
                 f"{errors} errors, {r.load.turns_ok}/{expected} turns completed, "
                 f"{r.history_incomplete} incomplete histories, "
                 f"{r.tracebacks} server tracebacks")
    wrong = r.load.wrong + r.solo.wrong + r.history_foreign
    report.check(f"{prefix}ws_sessions_isolation", wrong == 0,
                 f"{r.load.wrong + r.solo.wrong} replies to the wrong session, "
                 f"{r.history_foreign} stored histories holding another session's nonce")
    cpu_ms = 1000 * ratio(r.load.server_cpu_s, r.load.turns_ok)
    report.check(f"{prefix}ws_sessions_server_cpu", cpu_ms <= CPU_MS_PER_TURN,
                 f"{cpu_ms:.2f} ms of server CPU per turn (target <= {CPU_MS_PER_TURN:g})")
    ttft, upstream = p(r.load.ttft_ms, 99), p(base.loaded.ttft_ms, 99)
    report.check(f"{prefix}ws_sessions_ttft", ratio(ttft, upstream) <= TTFT_RATIO_P99,
                 f"time to first token p99 {ttft:.0f} ms = {ratio(ttft, upstream):.2f}x the "
                 f"upstream alone under the same burst ({upstream:.0f} ms; target <= "
                 f"{TTFT_RATIO_P99:g}x)")


def report_latency(prefix: str, r: ScenarioResult, base: Baseline) -> None:
    v = Report.value
    ttft, turn, up = r.load.ttft_ms, r.load.turn_ms, base.loaded.ttft_ms
    v(f"{prefix}ttft_p50_ms", p(ttft, 50), 1)
    v(f"{prefix}ttft_p99_ms", p(ttft, 99), 1)
    v(f"{prefix}turn_p50_ms", p(turn, 50), 1)
    v(f"{prefix}turn_p99_ms", p(turn, 99), 1)
    v(f"{prefix}wall_s", r.load.wall_s, 2)
    v(f"{prefix}turns_per_s", ratio(r.load.turns_ok, r.load.wall_s), 1)
    v(f"{prefix}server_cpu_ms_per_turn", 1000 * ratio(r.load.server_cpu_s, r.load.turns_ok), 2)
    v(f"{prefix}server_cpu_cores", ratio(r.load.server_cpu_s, r.load.wall_s), 2)
    v(f"{prefix}client_cpu_cores", ratio(r.load.cpu_s, r.load.wall_s), 2)
    v(f"{prefix}upstream_ttft_p50_ms", p(up, 50), 1)
    v(f"{prefix}upstream_ttft_p99_ms", p(up, 99), 1)
    v(f"{prefix}upstream_errors", sum(base.loaded.errors.values()))
    v(f"{prefix}ttft_ratio_p50", ratio(p(ttft, 50), p(up, 50)), 2)
    v(f"{prefix}ttft_ratio_p99", ratio(p(ttft, 99), p(up, 99)), 2)
    solo, up_solo = r.solo.ttft_ms, base.solo.ttft_ms
    v(f"{prefix}solo_ttft_p50_ms", p(solo, 50), 1)
    v(f"{prefix}solo_upstream_ttft_p50_ms", p(up_solo, 50), 1)
    v(f"{prefix}solo_ttft_ratio_p50", ratio(p(solo, 50), p(up_solo, 50)), 2)


def main() -> int:
    args = parse_args()
    count = args.sessions or (QUICK_SESSIONS if args.quick else FULL_SESSIONS)
    report = Report()
    report.value("open_files_limit", raise_open_files(4 * count + 4096))
    report.value("upstream", f"latency={UPSTREAM_LATENCY}s token_delay={UPSTREAM_TOKEN_DELAY}s")
    upstream = start_upstream()
    try:
        baseline = measure_upstream(upstream, count, args.clients, secrets.token_hex(3))
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
                run_scenario("", sqlite_url(Path(tmp)), Path(tmp), upstream, args, baseline,
                             report)
        postgres_url = os.environ.get(POSTGRES_ENV, "").strip()
        if postgres_url:
            with postgres_database(postgres_url) as url, \
                    tempfile.TemporaryDirectory(prefix="bench-ws-pg-") as tmp:
                run_scenario("postgres_", url, Path(tmp), upstream, args, baseline, report,
                             args.api_processes)
        else:
            report.value("postgres", f"skipped ({POSTGRES_ENV} not set)")
    finally:
        stop_server(upstream)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
