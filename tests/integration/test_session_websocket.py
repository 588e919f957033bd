"""The session WebSocket against a real server process and a loopback model server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from personae.config import Settings
from personae.providers.fake import FakeOpenAIServer
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import member_keys
from tests.support.servers import api_server

pytestmark = pytest.mark.slow


async def _until_done(ws) -> list[dict]:
    events = []
    while True:
        event = json.loads(await ws.recv())
        events.append(event)
        if event["type"] in {"done", "error"}:
            return events


async def _interrupt_a_long_reply(ws) -> None:
    """Barge-in: the reply stops at once and its partial text is kept, interrupted."""
    while json.loads(await ws.recv())["type"] != "message":  # the switch's note, greeting
        pass
    long = " ".join(f"w{i}" for i in range(150))
    await ws.send(json.dumps({"type": "message", "content": long}))
    seen = []
    while len([e for e in seen if e["type"] == "delta"]) < 3:
        seen.append(json.loads(await ws.recv()))
    await ws.send(json.dumps({"type": "interrupt"}))
    while seen[-1]["type"] != "interrupted":
        seen.append(json.loads(await ws.recv()))
    assert "done" not in [e["type"] for e in seen]
    stopped = seen[-1]["message"]
    assert stopped["status"] == "interrupted" and 0 < len(stopped["content"]) < len(long)


async def test_websocket_turns_switch_and_isolation(database_url: str, tmp_path: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.token_delay = 0.02
        settings = Settings(data_dir=tmp_path, database_url=database_url)
        alice, bob = await member_keys(settings, [TINA, MOHIT])
        providers = json.dumps({"fake": {"kind": "openai", "base_url": model.base_url,
                                         "api_key": "k", "model": "fake", "max_retries": 0}})
        with api_server(database_url, tmp_path, PERSONAE_PROVIDERS=providers,
                        PERSONAE_DEFAULT_PROVIDER="fake") as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                opened = await client.post("/v1/sessions", json={"persona_id": "tina"},
                                           headers={"Authorization": f"Bearer {alice}"})
                sid = opened.json()["session"]["id"]
            ws_url = url.replace("http", "ws") + f"/v1/sessions/{sid}/ws"
            async with connect(f"{ws_url}?api_key={alice}") as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                await ws.send(json.dumps({"type": "message", "content": "first nonce-1"}))
                await ws.send(json.dumps({"type": "message", "content": "second"}))
                events = [json.loads(await ws.recv()) for _ in range(2)]
                events += await _until_done(ws)
                kinds = [e["type"] for e in events]
                errors = [e for e in events if e["type"] == "error"]
                assert errors[0]["error"]["code"] == "turn_in_progress"
                assert kinds[-1] == "done"
                assert "nonce-1" in events[-1]["message"]["content"]
                await ws.send(json.dumps({"type": "switch", "persona_id": "mohit"}))
                switched = json.loads(await ws.recv())
                assert switched["type"] == "persona_switched"
                assert switched["voice"]["voice_id"] == "onyx"
                await _interrupt_a_long_reply(ws)
            with pytest.raises(ConnectionClosed) as closed:
                async with connect(f"{ws_url}?api_key={bob}") as ws:
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4404
