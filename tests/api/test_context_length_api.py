"""A prompt the model cannot fit is a 400 ``context_length_exceeded`` on every route.

The persona's provider is a real loopback OpenAI-protocol server answering as OpenAI
does when a prompt is too long; the OpenAI-compatible route, the sessions REST and SSE
routes and the WebSocket all tell the caller so (never a 502), the turn is kept as
failed with that error, and the provider stays healthy for everyone else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from personae.api.app import create_app
from personae.auth.principal import Role
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
from tests.support.api import Api, serve_app
from tests.support.chat import chat_settings
from tests.support.personas import TINA
from tests.support.runtime import create_global_personas

CODE = "context_length_exceeded"
TOO_LONG = ("This model's maximum context length is 4096 tokens. However, your messages "
            "resulted in 9120 tokens. Please reduce the length of the messages.")


@pytest.fixture
async def chat(database_url: str,
               tmp_path: Path) -> AsyncIterator[tuple[Api, FakeOpenAIServer]]:
    async with FakeOpenAIServer() as server:
        async for api in serve_app(chat_settings(tmp_path, database_url, server.base_url)):
            created = await api.client.post("/v1/personas", json={
                "definition": TINA, "global": True}, headers=api.as_("admin"))
            assert created.status_code == 201, created.text
            yield api, server


def _too_long(server: FakeOpenAIServer, times: int = 1) -> None:
    server.fail_next(times, status=400, message=TOO_LONG, code=CODE)


async def _session(api: Api) -> str:
    opened = await api.client.post("/v1/sessions", json={"persona_id": "tina"},
                                   headers=api.as_("alice"))
    assert opened.status_code == 201, opened.text
    return str(opened.json()["session"]["id"])


def _says_what_to_do(message: str) -> None:
    assert "9,120 tokens" in message and "4,096" in message
    assert "shorten the persona's prompt or the conversation" in message


@pytest.mark.parametrize("stream", [False, True])
async def test_the_openai_route_answers_400_with_openais_code(
        chat: tuple[Api, FakeOpenAIServer], stream: bool) -> None:
    api, server = chat
    _too_long(server, times=6)  # more than the breaker's 5 failures
    body = {"model": "tina", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    for _ in range(6):
        refused = await api.client.post("/v1/chat/completions", json=body,
                                        headers=api.as_("alice"))
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["type"], error["param"]) == (
            CODE, "invalid_request_error", "messages")
        _says_what_to_do(error["message"])
    body["messages"] = [{"role": "user", "content": "short nonce-5"}]
    reply = await api.client.post("/v1/chat/completions", json={**body, "stream": False},
                                  headers=api.as_("alice"))
    assert reply.status_code == 200, reply.text  # the breaker did not open
    assert "nonce-5" in reply.json()["choices"][0]["message"]["content"]
    assert server.chat_count == 7  # one request each: nothing was retried


async def test_a_session_turn_is_a_400_and_is_kept_as_failed(
        chat: tuple[Api, FakeOpenAIServer]) -> None:
    api, server = chat
    sid = await _session(api)
    _too_long(server)
    failed = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi"},
                                   headers=api.as_("alice"))
    assert failed.status_code == 400, failed.text
    error = failed.json()["error"]
    assert error["code"] == CODE
    _says_what_to_do(error["message"])
    assert error["details"]["message"]["status"] == "failed"
    history = (await api.client.get(f"/v1/sessions/{sid}/messages",
                                    headers=api.as_("alice"))).json()["data"]
    assert history[-1]["status"] == "failed"
    assert history[-1]["meta"]["error"]["code"] == CODE


async def test_a_streamed_session_turn_ends_with_an_error_event_of_status_400(
        chat: tuple[Api, FakeOpenAIServer]) -> None:
    api, server = chat
    sid = await _session(api)
    _too_long(server)
    events: list[tuple[str, str]] = []
    async with api.client.stream("POST", f"/v1/sessions/{sid}/messages",
                                 json={"content": "hi", "stream": True},
                                 headers=api.as_("alice")) as response:
        assert response.status_code == 200
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, line.split(":", 1)[1].strip()))
    assert events[-1][0] == "error"
    error = json.loads(events[-1][1])["error"]
    assert (error["code"], error["status"]) == (CODE, 400)


async def _member_key(runtime: Runtime) -> str:
    await runtime.users.create_user("alice", Role.member)
    await create_global_personas(runtime, [TINA])
    return (await runtime.users.create_key("alice"))[0]


def test_the_websocket_sends_an_error_event_with_the_code(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        app = create_app(chat_settings(tmp_path, sqlite_url, server.base_url))
        with TestClient(app) as client:
            key = client.portal.call(_member_key, app.state.runtime)
            opened = client.post("/v1/sessions", json={"persona_id": "tina"},
                                 headers={"Authorization": f"Bearer {key}"})
            sid = opened.json()["session"]["id"]
            _too_long(server)
            with client.websocket_connect(f"/v1/sessions/{sid}/ws?api_key={key}") as ws:
                assert ws.receive_json()["type"] == "ready"
                ws.send_json({"type": "message", "content": "hi"})
                events = [ws.receive_json()]
                while events[-1]["type"] not in ("done", "error"):
                    events.append(ws.receive_json())
    error = events[-1]
    assert error["type"] == "error"
    assert (error["error"]["code"], error["error"]["status"]) == (CODE, 400)
    assert error["message"]["status"] == "failed"
