"""Crash-drill clients: stream turns from real servers and remember what was seen, when.

Shared by ``tests/integration/test_crash_drill.py`` and ``bench/crash_drill.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from personae.config import Settings
from personae.conversations.store import MessageRecord
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime


@dataclass
class Turn:
    """One streamed turn as its client saw it: acknowledgement, deltas (timed), end."""

    session_id: str
    text: str
    user: dict[str, Any] | None = None
    moments: list[tuple[float, str]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    broken: bool = False  # the stream ended without a final event (the server died)
    status: int | None = None

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


def provider_environment(model: FakeOpenAIServer, timeout: float = 30) -> dict[str, str]:
    """Server environment that makes the loopback model every persona's provider."""
    providers = {"fake": {"kind": "openai", "base_url": model.base_url, "api_key": "k",
                          "model": "fake", "max_retries": 0, "timeout_seconds": timeout}}
    return {"PERSONAE_PROVIDERS": json.dumps(providers), "PERSONAE_DEFAULT_PROVIDER": "fake"}


async def seed_global(settings: Settings, persona: dict[str, Any]) -> None:
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.personas.create(await runtime.auth.local_admin(), persona,
                                      global_scope=True)
    finally:
        await runtime.close()


async def histories(settings: Settings, ids: list[str]) -> dict[str, list[MessageRecord]]:
    """Each session's stored messages, read straight from the database."""
    runtime = await Runtime.open(settings, watch=False)
    try:
        admin = await runtime.auth.local_admin()
        return {sid: await runtime.conversations.history(admin, sid) for sid in ids}
    finally:
        await runtime.close()


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


async def stream_turn(client: httpx.AsyncClient, turn: Turn) -> None:
    """Send the turn over SSE and read it to its end, or to the server's death."""
    try:
        async with client.stream("POST", f"/v1/sessions/{turn.session_id}/messages",
                                 json={"content": turn.text, "stream": True}) as response:
            turn.status = response.status_code
            async for event in sse_events(response):
                turn.record(event)
    except httpx.HTTPError:
        turn.broken = True


async def websocket_turn(url: str, turn: Turn) -> None:
    """The turn over the session's WebSocket, read until the server closes it."""
    async with connect(url.replace("http", "ws") + f"/v1/sessions/{turn.session_id}/ws") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "message", "content": turn.text}))
        try:
            while True:
                turn.record(json.loads(await ws.recv()))
        except ConnectionClosed:
            turn.broken = True


async def open_turns(client: httpx.AsyncClient, persona_id: str,
                     texts: list[str]) -> list[Turn]:
    """A new session per text, each with its turn still to send."""
    turns = []
    for text in texts:
        opened = await client.post("/v1/sessions", json={"persona_id": persona_id})
        assert opened.status_code == 201, opened.text
        turns.append(Turn(opened.json()["session"]["id"], text))
    return turns


async def until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Wait for a condition on what the client streams (other tasks) have recorded."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
