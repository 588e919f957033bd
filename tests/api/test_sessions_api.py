"""Conversations over HTTP: REST, server-sent events, errors and isolation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.providers.fake import FakeOpenAIServer
from tests.support.api import Api, serve_app
from tests.support.chat import chat_settings
from tests.support.personas import MOHIT, TINA


@pytest.fixture
async def chat_api(database_url: str,
                   tmp_path: Path) -> AsyncIterator[tuple[Api, FakeOpenAIServer]]:
    async with FakeOpenAIServer() as server:
        settings = chat_settings(tmp_path, database_url, server.base_url)
        async for api in serve_app(settings):
            for persona in (TINA, MOHIT):
                created = await api.client.post("/v1/personas", json={
                    "definition": persona, "global": True}, headers=api.as_("admin"))
                assert created.status_code == 201
            yield api, server


async def _open(api: Api, who: str = "alice", persona: str = "tina") -> dict:
    response = await api.client.post("/v1/sessions", json={"persona_id": persona},
                                     headers=api.as_(who))
    assert response.status_code == 201, response.text
    return response.json()


async def test_open_send_and_read_history(chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    opened = await _open(api)
    assert opened["events"][0]["message"]["content"] == "नमस्ते, मैं तीना हूं।"
    sid = opened["session"]["id"]
    reply = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi nonce-7"},
                                  headers=api.as_("alice"))
    assert reply.status_code == 200, reply.text
    assert "nonce-7" in reply.json()["reply"]["content"]
    history = (await api.client.get(f"/v1/sessions/{sid}/messages",
                                    headers=api.as_("alice"))).json()
    assert [m["role"] for m in history["data"]] == ["assistant", "user", "assistant"]
    listed = (await api.client.get("/v1/sessions", headers=api.as_("alice"))).json()
    assert listed["data"][0]["turns"] == 1
    assert listed["data"][0]["average_response_ms"] is not None


async def test_sse_streams_deltas_then_done(chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    sid = (await _open(api))["session"]["id"]
    kinds, deltas = [], []
    async with api.client.stream("POST", f"/v1/sessions/{sid}/messages",
                                 json={"content": "stream me please", "stream": True},
                                 headers=api.as_("alice")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                kinds.append(event["type"])
                if event["type"] == "delta":
                    deltas.append(event["text"])
    assert kinds[0] == "message"
    assert kinds[-1] == "done"
    assert "delta" in kinds
    assert "stream me please" in "".join(deltas)


async def test_sse_sends_a_reply_in_frames_not_an_event_per_token(
        chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, server = chat_api
    words = " ".join(f"w{i}" for i in range(80))
    server.reply, server.token_delay = (lambda _body: words), 0.0
    sid = (await _open(api))["session"]["id"]
    deltas, done = [], {}
    async with api.client.stream("POST", f"/v1/sessions/{sid}/messages",
                                 json={"content": "go", "stream": True},
                                 headers=api.as_("alice")) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event["type"] == "delta":
                    deltas.append(event["text"])
                done = event
    assert done["type"] == "done" and done["message"]["content"] == words == "".join(deltas)
    assert 2 <= len(deltas) <= 80 // 4  # the first at once, then a frame per 25 ms / 16


async def test_errors_are_clear(chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, server = chat_api
    missing = await api.client.post("/v1/sessions", json={"persona_id": "nobody"},
                                    headers=api.as_("alice"))
    assert missing.status_code == 404
    sid = (await _open(api))["session"]["id"]
    empty = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "  "},
                                  headers=api.as_("alice"))
    assert empty.status_code == 400
    assert empty.json()["error"]["message"] == "content: must not be empty"
    server.fail_always(503)
    failed = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"},
                                   headers=api.as_("alice"))
    assert failed.status_code in (502, 503)
    assert failed.json()["error"]["details"]["message"]["status"] == "failed"


async def test_another_users_session_is_404(chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    sid = (await _open(api))["session"]["id"]
    for method, path, body in (("GET", "", None), ("GET", "/messages", None),
                               ("POST", "/messages", {"content": "hi"}),
                               ("POST", "/switch", {"persona_id": "mohit"}),
                               ("DELETE", "", None)):
        response = await api.client.request(method, f"/v1/sessions/{sid}{path}", json=body,
                                            headers=api.as_("bob"))
        assert response.status_code == 404, (method, path)
    assert (await api.client.get(f"/v1/sessions/{sid}", headers=api.as_("alice"))) \
        .status_code == 200


async def test_switch_over_rest(chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    sid = (await _open(api))["session"]["id"]
    switched = await api.client.post(f"/v1/sessions/{sid}/switch", json={"persona_id": "mohit"},
                                     headers=api.as_("alice"))
    events = switched.json()["events"]
    assert events[0] == {"type": "persona_switched", "persona_id": "mohit",
                         "persona_version": 1, "name": "Mohit", "language": "en",
                         "voice": {"provider": None, "voice_id": "onyx", "speed": 1.0}}
    assert events[-1]["message"]["content"] == "Hello, I am Mohit."


async def test_a_whole_reply_is_not_repeated_as_deltas(
        chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    sid = (await _open(api))["session"]["id"]
    body = (await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "a b c"},
                                  headers=api.as_("alice"))).json()
    assert [e["type"] for e in body["events"]] == ["message"]
    assert body["reply"]["content"] == "a b c"


async def test_a_persona_made_private_stops_another_users_session(
        chat_api: tuple[Api, FakeOpenAIServer]) -> None:
    api, _ = chat_api
    alice, bob = api.as_("alice"), api.as_("bob")
    created = await api.client.post("/v1/personas", json={
        "definition": {"id": "oracle", "name": "Oracle"}, "visibility": "public"},
        headers=alice)
    persona_id = created.json()["id"]
    rest, sse, gateway = [(await _open(api, "bob", persona_id))["session"]["id"]
                          for _ in range(3)]
    made_private = await api.client.patch(
        f"/v1/personas/{persona_id}", json={"visibility": "private", "base_version": 1},
        headers=alice)
    assert made_private.status_code == 200, made_private.text

    reply = await api.client.post(f"/v1/sessions/{rest}/messages", json={"content": "hi"},
                                  headers=bob)
    streamed = await api.client.post(f"/v1/sessions/{sse}/messages",
                                     json={"content": "hi", "stream": True}, headers=bob)
    completion = await api.client.post("/v1/chat/completions", json={
        "model": persona_id, "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"session_id": gateway}}, headers=bob)
    for response in (reply, streamed, completion):
        assert response.status_code == 404, response.text
        assert "is no longer available to you; this session is closed" in \
            response.json()["error"]["message"]
    for sid in (rest, sse, gateway):
        session = await api.client.get(f"/v1/sessions/{sid}", headers=bob)
        assert session.json()["status"] == "closed"
