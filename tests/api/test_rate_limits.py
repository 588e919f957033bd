"""Rate limits over HTTP: REST, server-sent events, the OpenAI route (with the official
client), a WebSocket that stays open, keyless callers per address, token budgets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from websockets.asyncio.client import connect

from personae.config import Settings
from personae.errors import InvalidInput
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
from tests.support.api import Api, serve_app
from tests.support.chat import chat_settings
from tests.support.personas import MOHIT, TINA
from tests.support.runtime import member_keys
from tests.support.servers import api_server

MEMBER = {"chat": "2/minute", "writes": "2/minute", "tokens_per_day": None}


def _limited(tmp_path: Path, database_url: str, base_url: str, **member: Any) -> Settings:
    settings = chat_settings(tmp_path, database_url, base_url)
    return settings.model_copy(update={
        "rate_limits": Settings(rate_limits={"member": {**MEMBER, **member}}).rate_limits})


async def _serve(settings: Settings) -> AsyncIterator[Api]:
    async for api in serve_app(settings):
        for persona in (TINA, MOHIT):
            created = await api.client.post("/v1/personas", json={
                "definition": persona, "global": True}, headers=api.as_("admin"))
            assert created.status_code == 201
        yield api


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def api(database_url: str, tmp_path: Path, model: FakeOpenAIServer) -> AsyncIterator[Api]:
    async for harness in _serve(_limited(tmp_path, database_url, model.base_url)):
        yield harness


async def _session(api: Api, who: str = "alice") -> str:
    opened = await api.client.post("/v1/sessions", json={"persona_id": "tina"},
                                   headers=api.as_(who))
    assert opened.status_code == 201, opened.text
    return str(opened.json()["session"]["id"])


async def _say(api: Api, sid: str, who: str = "alice", **extra: Any) -> httpx.Response:
    return await api.client.post(f"/v1/sessions/{sid}/messages",
                                 json={"content": "hello", **extra}, headers=api.as_(who))


def _refused(response: httpx.Response, route_class: str, limit: int,
             scope: str = "requests") -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    details: dict[str, Any] = error["details"]
    assert details["route_class"] == route_class and details["scope"] == scope
    retry = int(response.headers["Retry-After"])
    assert retry >= 1 and details["retry_after"] == retry
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) == retry
    return dict(error)


async def test_rest_turns_past_the_budget_get_429_and_others_are_untouched(api: Api) -> None:
    sid = await _session(api)
    for _ in range(2):
        assert (await _say(api, sid)).status_code == 200
    error = _refused(await _say(api, sid), "chat", 2)
    assert error["code"] == "rate_limited"
    assert error["message"].startswith("rate limit of 2/minute for chat requests reached")
    assert (await api.client.get(f"/v1/sessions/{sid}/messages",
                                 headers=api.as_("alice"))).status_code == 200  # other class
    assert (await _say(api, await _session(api, "bob"), "bob")).status_code == 200
    assert (await _say(api, await _session(api, "admin"), "admin")).status_code == 200


async def test_a_keys_own_limits_override_its_roles(api: Api) -> None:
    alice_key, = await api.runtime.users.keys_of("alice")
    await api.runtime.users.set_key_limits(alice_key.id, {"chat": "1/minute"})
    bob_key, = await api.runtime.users.keys_of("bob")
    await api.runtime.users.set_key_limits(bob_key.id, {"chat": "unlimited"})
    sid = await _session(api)
    assert (await _say(api, sid)).status_code == 200
    assert _refused(await _say(api, sid), "chat", 1)["details"]["limit"] == "1/minute"
    bobs = await _session(api, "bob")
    assert [(await _say(api, bobs, "bob")).status_code for _ in range(4)] == [200] * 4
    with pytest.raises(InvalidInput):
        await api.runtime.users.set_key_limits(alice_key.id, {"chat": "now and then"})


async def test_registry_writes_have_their_own_budget(api: Api) -> None:
    for n in range(2):
        created = await api.client.post("/v1/personas", json={
            "definition": {"id": f"p{n}", "name": "P"}}, headers=api.as_("alice"))
        assert created.status_code == 201, created.text
    refused = await api.client.post("/v1/personas", json={
        "definition": {"id": "p9", "name": "P"}}, headers=api.as_("alice"))
    _refused(refused, "writes", 2)
    assert (await api.client.get("/v1/personas/alice/p0",
                                 headers=api.as_("alice"))).status_code == 200


async def test_a_streamed_turn_is_refused_before_the_stream(api: Api) -> None:
    sid = await _session(api)
    for _ in range(2):
        async with api.client.stream("POST", f"/v1/sessions/{sid}/messages",
                                     json={"content": "hi", "stream": True},
                                     headers=api.as_("alice")) as response:
            assert response.status_code == 200
            assert "event: done" in (await response.aread()).decode()
    refused = await _say(api, sid, stream=True)
    assert refused.headers["content-type"].startswith("application/json")
    _refused(refused, "chat", 2)


async def test_the_official_openai_client_raises_its_rate_limit_error(api: Api) -> None:
    transport = httpx.ASGITransport(app=api.client._transport.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://personae") as http:
        client = openai.AsyncOpenAI(base_url="http://personae/v1", api_key=api.keys["alice"],
                                    http_client=http, max_retries=0)
        for _ in range(2):
            reply = await client.chat.completions.create(
                model="tina", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="tina", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert int(caught.value.response.headers["Retry-After"]) >= 1


async def test_the_daily_token_budget_refuses_model_calls_once_spent(
        database_url: str, tmp_path: Path, model: FakeOpenAIServer) -> None:
    settings = _limited(tmp_path, database_url, model.base_url, chat="100/minute",
                        tokens_per_day=5)
    async for api in _serve(settings):
        sid = await _session(api)
        assert (await _say(api, sid)).status_code == 200  # spends more than 5 tokens
        for _ in range(3):
            await asyncio.sleep(0)  # the charge is made beside the reply, not before it
        refused = await _say(api, sid)
        error = _refused(refused, "chat", 5, scope="tokens")
        assert error["message"].startswith("daily token budget of 5 tokens spent")
        assert (await api.client.get(f"/v1/sessions/{sid}/messages",
                                     headers=api.as_("alice"))).status_code == 200
        assert (await _say(api, await _session(api, "bob"), "bob")).status_code == 200


async def test_keyless_callers_are_counted_per_address(database_url: str,
                                                       tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        rate_limits={"anonymous": {"other": "2/minute"}})
    assert settings.keyless_allowed
    async for api in serve_app(settings):
        app = api.client._transport.app  # type: ignore[attr-defined]
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 5)),
                                     base_url="http://personae")
                   for host in ("127.0.0.1", "127.0.0.2")]
        first, second = clients
        for _ in range(2):
            assert (await first.get("/v1/me")).status_code == 200
        _refused(await first.get("/v1/me"), "other", 2)
        assert (await second.get("/v1/me")).status_code == 200
        assert (await first.get("/health")).status_code == 200  # never limited
        for client in clients:
            await client.aclose()


async def test_limits_switched_off_refuse_nothing(database_url: str, tmp_path: Path,
                                                  model: FakeOpenAIServer) -> None:
    settings = _limited(tmp_path, database_url, model.base_url).model_copy(
        update={"rate_limits_enabled": False})
    async for api in _serve(settings):
        sid = await _session(api)
        assert [(await _say(api, sid)).status_code for _ in range(4)] == [200] * 4


async def _event(ws: Any, *types: str) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = json.loads(await ws.recv())
        if event["type"] in types:
            return event


async def test_websocket_turns_count_and_a_refusal_leaves_the_socket_open(
        sqlite_url: str, tmp_path: Path, model: FakeOpenAIServer) -> None:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url)
    alice, _ = await member_keys(settings, [TINA, MOHIT])
    runtime = await Runtime.open(settings, watch=False)
    await runtime.close()
    providers = json.dumps({"fake": {"kind": "openai", "base_url": model.base_url,
                                     "api_key": "k", "model": "fake", "max_retries": 0}})
    with api_server(sqlite_url, tmp_path, PERSONAE_PROVIDERS=providers,
                    PERSONAE_DEFAULT_PROVIDER="fake",
                    PERSONAE_RATE_LIMITS=json.dumps({"member": MEMBER})) as url:
        headers = {"Authorization": f"Bearer {alice}"}
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as client:
            opened = await client.post("/v1/sessions", json={"persona_id": "tina"})
            sid = opened.json()["session"]["id"]
        ws_url = url.replace("http", "ws") + f"/v1/sessions/{sid}/ws"
        async with connect(ws_url, additional_headers=headers) as ws:
            await _event(ws, "ready")
            for _ in range(2):
                await ws.send(json.dumps({"type": "message", "content": "hi"}))
                assert (await _event(ws, "done", "error"))["type"] == "done"
            await ws.send(json.dumps({"type": "message", "content": "one more"}))
            refused = await _event(ws, "done", "error")
            assert refused["error"]["code"] == "rate_limited", refused
            assert refused["error"]["details"]["retry_after"] >= 1
            assert refused["error"]["details"]["route_class"] == "chat"
            await ws.send(json.dumps({"type": "switch", "persona_id": "mohit"}))
            assert (await _event(ws, "persona_switched", "error"))["type"] == \
                "persona_switched"  # the socket is still open and serving
