"""No credential reaches a real server's log: uvicorn writes every path with its query
string, and a WebSocket carries its key as ``?api_key=``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from personae.auth.principal import Principal, Role
from personae.config import Settings
from personae.logs import REDACTED
from personae.runtime import Runtime
from tests.support.personas import MOHIT
from tests.support.servers import api_server

pytestmark = pytest.mark.slow

BAD_KEY = "pk_not-a-real-key-0123456789abcdef"


async def _key_and_session(settings: Settings) -> tuple[str, str]:
    runtime = await Runtime.open(settings, watch=False)
    try:
        user = await runtime.users.create_user("alice", Role.member)
        key, _ = await runtime.users.create_key("alice")
        await runtime.personas.create(await runtime.auth.local_admin(), MOHIT,
                                      global_scope=True)
        alice = Principal(user.id, user.name, user.role)
        session, _ = await runtime.conversations.open(alice, "mohit")
        return key, session.id
    finally:
        await runtime.close()


async def test_keys_never_reach_the_servers_log(sqlite_url: str, tmp_path: Path) -> None:
    key, session_id = await _key_and_session(Settings(data_dir=tmp_path,
                                                      database_url=sqlite_url))
    log = tmp_path / "server.log"
    with api_server(sqlite_url, tmp_path, log_level="info", log=log) as url:
        ws_url = url.replace("http", "ws") + f"/v1/sessions/{session_id}/ws"
        async with connect(f"{ws_url}?api_key={key}") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
        async with connect(f"{ws_url}?api_key={BAD_KEY}") as refused:
            with pytest.raises(ConnectionClosed) as closed:
                await refused.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            bearer = await client.get("/v1/me", headers={"Authorization": f"Bearer {BAD_KEY}"})
            assert bearer.status_code == 401
            queried = await client.get(f"/v1/personas/mohit?token={key}&x=1")
            assert queried.status_code == 200
    written = log.read_text(encoding="utf-8", errors="replace")
    assert f'"WebSocket /v1/sessions/{session_id}/ws?api_key={REDACTED}"' in written
    assert f'"GET /v1/personas/mohit?token={REDACTED}&x=1 HTTP/1.1" 200' in written
    assert '"GET /v1/me HTTP/1.1" 401' in written
    assert key not in written and key[3:] not in written
    assert BAD_KEY not in written and BAD_KEY[3:] not in written
