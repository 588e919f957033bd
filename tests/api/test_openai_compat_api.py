"""The OpenAI-compatible gateway, driven by the official ``openai`` SDK, unchanged.

The SDK talks to the real app in-process (httpx ASGI transport); the persona's
provider is a real loopback OpenAI-protocol server, so both hops speak real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from personae.api.app import create_app
from personae.auth.principal import Role
from personae.personas.prompt import build_system_prompt
from personae.personas.schema import PersonaDefinition
from personae.providers.fake import FakeOpenAIServer
from tests.support.chat import chat_settings
from tests.support.personas import MOHIT, TINA

BASE = "http://personae"
WARM = {"id": "warm", "name": "Warm Coach", "system_prompt": "Be encouraging.",
        "model": {"temperature": 0.3, "max_tokens": 64}}
ALICE_OWN = {"id": "notes", "name": "Alice's Notes"}  # stored as alice/notes
BOB_SECRET = {"id": "secret", "name": "Bob's Secret"}  # stored as bob/secret


@dataclass
class Gateway:
    app: FastAPI
    http: httpx.AsyncClient
    server: FakeOpenAIServer
    keys: dict[str, str]

    def sdk(self, who: str = "alice", key: str | None = None) -> openai.AsyncOpenAI:
        """The official client as any user would build it, pointed at the app."""
        transport = httpx.ASGITransport(app=self.app)
        return openai.AsyncOpenAI(base_url=f"{BASE}/v1", api_key=key or self.keys[who],
                                  max_retries=0,
                                  http_client=httpx.AsyncClient(transport=transport))

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def _serve(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with FakeOpenAIServer() as server:
        app = create_app(chat_settings(tmp_path, database_url, server.base_url))
        async with app.router.lifespan_context(app):
            users = app.state.runtime.users
            keys = {}
            for name, role in [("admin", Role.admin), ("alice", Role.member),
                               ("bob", Role.member)]:
                await users.create_user(name, role)
                keys[name], _ = await users.create_key(name)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
                gateway = Gateway(app, http, server, keys)
                await _seed(gateway)
                yield gateway


async def _seed(gw: Gateway) -> None:
    for who, body in [("admin", {"definition": TINA, "global": True}),
                      ("admin", {"definition": MOHIT, "global": True}),
                      ("admin", {"definition": WARM, "global": True}),
                      ("alice", {"definition": ALICE_OWN}),
                      ("bob", {"definition": BOB_SECRET})]:
        created = await gw.http.post("/v1/personas", json=body, headers=gw.as_(who))
        assert created.status_code == 201, created.text


@pytest.fixture
async def gw(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in _serve(sqlite_url, tmp_path):
        yield gateway


@pytest.fixture
async def gw_any_db(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in _serve(database_url, tmp_path):
        yield gateway


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_completion_echoes_with_usage(gw_any_db: Gateway) -> None:
    async with gw_any_db.sdk() as client:
        reply = await client.chat.completions.create(model="mohit",
                                                     messages=_user("hello nonce-31"))
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == "mohit"
    assert reply.choices[0].message.role == "assistant"
    assert "nonce-31" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert gw_any_db.server.requests[-1].body["stream"] is False  # no stream to reassemble


async def test_streaming_reassembles_with_usage_chunk(gw_any_db: Gateway) -> None:
    async with gw_any_db.sdk() as client:
        stream = await client.chat.completions.create(
            model="mohit", messages=_user("stream these words nonce-32"), stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.model == "mohit" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream these words nonce-32"
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "stop"
    assert reasons.count("stop") == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


async def test_models_list_shows_only_readable_personas(gw_any_db: Gateway) -> None:
    async with gw_any_db.sdk("alice") as alice, gw_any_db.sdk("bob") as bob:
        seen_by_alice = {m.id: m async for m in alice.models.list()}
        seen_by_bob = {m.id async for m in bob.models.list()}
        assert set(seen_by_alice) == {"tina", "mohit", "warm", "alice/notes"}
        assert seen_by_bob == {"tina", "mohit", "warm", "bob/secret"}
        assert seen_by_alice["tina"].owned_by == "global"
        assert seen_by_alice["alice/notes"].owned_by not in ("global", "")
        assert seen_by_alice["tina"].created > 0
        assert (await alice.models.retrieve("tina")).id == "tina"
        assert (await alice.models.retrieve("alice/notes")).id == "alice/notes"
        with pytest.raises(openai.NotFoundError):
            await alice.models.retrieve("bob/secret")


async def test_archived_persona_leaves_models_and_refuses_chat(gw: Gateway) -> None:
    archived = await gw.http.post("/v1/personas/alice/notes/archive", headers=gw.as_("alice"))
    assert archived.status_code == 200
    async with gw.sdk("alice") as client:
        assert "alice/notes" not in {m.id async for m in client.models.list()}
        with pytest.raises(openai.ConflictError, match="archived"):
            await client.chat.completions.create(model="alice/notes", messages=_user("hi"))


async def test_persona_prompt_goes_first_then_client_messages(gw: Gateway) -> None:
    messages = [{"role": "system", "content": "Answer in one line."},
                {"role": "developer", "content": "No emoji."},
                {"role": "user", "content": "earlier question"},
                {"role": "assistant", "content": "earlier answer"},
                {"role": "user", "content": [{"type": "text", "text": "now "},
                                             {"type": "text", "text": "nonce-33"}]}]
    async with gw.sdk() as client:
        reply = await client.chat.completions.create(model="tina", messages=messages)
    assert reply.choices[0].message.content == "now nonce-33"
    sent = gw.server.requests[-1].messages
    expected = build_system_prompt(PersonaDefinition.model_validate(TINA))
    assert sent[0] == {"role": "system", "content": expected}
    prompt = (await gw.http.get("/v1/personas/tina/prompt", headers=gw.as_("alice"))).json()
    assert sent[0]["content"] == prompt["system_prompt"]
    assert sent[1:] == [{"role": "system", "content": "Answer in one line."},
                        {"role": "system", "content": "No emoji."},
                        {"role": "user", "content": "earlier question"},
                        {"role": "assistant", "content": "earlier answer"},
                        {"role": "user", "content": "now nonce-33"}]


async def test_request_settings_override_the_personas(gw: Gateway) -> None:
    async with gw.sdk() as client:
        await client.chat.completions.create(model="warm", messages=_user("plain"))
        plain = gw.server.requests[-1].body
        assert (plain["temperature"], plain["max_tokens"]) == (0.3, 64)
        reply = await client.chat.completions.create(
            model="warm", messages=_user("one two three four"), temperature=1.1,
            max_completion_tokens=2, top_p=0.5, stop=["END"])
        tuned = gw.server.requests[-1].body
        assert (tuned["temperature"], tuned["max_tokens"], tuned["top_p"], tuned["stop"]) \
            == (1.1, 2, 0.5, ["END"])
        assert reply.choices[0].finish_reason == "length"
        schema = {"type": "object", "properties": {"mood": {"type": "string",
                                                            "enum": ["calm"]}}}
        shaped = await client.chat.completions.create(
            model="warm", messages=_user("mood?"),
            response_format={"type": "json_schema",
                             "json_schema": {"name": "mood", "schema": schema}})
    assert gw.server.requests[-1].body["response_format"]["json_schema"]["schema"] == schema
    assert shaped.choices[0].message.content == '{"mood": "calm"}'


async def test_seed_penalties_user_and_json_object_reach_the_upstream(gw: Gateway) -> None:
    async with gw.sdk() as client:
        reply = await client.chat.completions.create(
            model="warm", messages=_user("nonce-36"), seed=5, presence_penalty=0.4,
            frequency_penalty=-0.3, user="end-user-7", response_format={"type": "json_object"})
        sent = gw.server.requests[-1].body
        assert (sent["seed"], sent["presence_penalty"], sent["frequency_penalty"],
                sent["user"], sent["response_format"]) == (
            5, 0.4, -0.3, "end-user-7", {"type": "json_object"})
        assert json.loads(reply.choices[0].message.content or "") == {"reply": "nonce-36"}
        await client.chat.completions.create(model="warm", messages=_user("two"), n=2,
                                             seed=5)
    assert sorted(r.body["seed"] for r in gw.server.requests[-2:]) == [5, 6]


async def test_unknown_or_unreadable_model_is_not_found(gw_any_db: Gateway) -> None:
    async with gw_any_db.sdk("alice") as client:
        with pytest.raises(openai.NotFoundError, match="nobody") as missing:
            await client.chat.completions.create(model="nobody", messages=_user("hi"))
        with pytest.raises(openai.NotFoundError, match="bob/secret"):
            await client.chat.completions.create(model="bob/secret", messages=_user("hi"),
                                                 stream=True)
    assert missing.value.code == "not_found"
    assert missing.value.param == "model"


@pytest.mark.parametrize(("messages", "field"), [
    ([], "messages"),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}],
     "messages[1].role"),
    ([{"role": "user", "content": 7}], "messages[0].content"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
     "messages[0].content[0]"),
    ([{"content": "no role"}], "messages[0].role"),
])
async def test_bad_messages_are_bad_requests(gw: Gateway, messages: list[Any],
                                             field: str) -> None:
    async with gw.sdk() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="tina", messages=messages)
    assert caught.value.status_code == 400
    assert f"{field}:" in caught.value.message
    assert caught.value.param == field
    assert caught.value.code == "invalid_input"


async def test_bad_settings_are_bad_requests(gw: Gateway) -> None:
    async with gw.sdk() as client:
        with pytest.raises(openai.BadRequestError, match="temperature"):
            await client.chat.completions.create(model="tina", messages=_user("hi"),
                                                 temperature=3)
        with pytest.raises(openai.BadRequestError, match="response_format"):
            await client.chat.completions.create(model="tina", messages=_user("hi"),
                                                 response_format={"type": "xml"})
    raw = await gw.http.post("/v1/chat/completions", content=b"{not json",
                             headers=gw.as_("alice"))
    assert raw.status_code == 400
    error = raw.json()["error"]
    assert {"message", "type", "code", "details"} <= set(error)
    assert error["type"] == "invalid_request_error"


async def test_bad_key_is_authentication_error(gw: Gateway) -> None:
    async with gw.sdk(key="not-a-real-key") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="tina", messages=_user("hi"))
    assert caught.value.status_code == 401
    assert caught.value.code == "unauthenticated"
    assert caught.value.type == "authentication_error"


async def test_upstream_failure_is_a_provider_status(gw: Gateway) -> None:
    async with gw.sdk() as client:
        gw.server.fail_next(1, status=500)
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model="mohit", messages=_user("hi"))
        assert failed.value.status_code == 502
        assert failed.value.code == "provider_error"
        gw.server.fail_next(1, status=503)
        with pytest.raises(openai.APIStatusError) as streamed:
            await client.chat.completions.create(model="mohit", messages=_user("hi"),
                                                 stream=True)
        assert streamed.value.status_code == 502
        gw.server.fail_always(503)
        statuses = []
        for _ in range(5):  # the breaker opens after 5 consecutive failures
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(model="mohit", messages=_user("hi"))
            statuses.append(caught.value.status_code)
    assert statuses[-1] == 503
    assert caught.value.code == "provider_unavailable"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert set(statuses) <= {502, 503}


async def _open_session(gw: Gateway, who: str = "alice", persona: str = "tina") -> str:
    opened = await gw.http.post("/v1/sessions", json={"persona_id": persona},
                                headers=gw.as_(who))
    assert opened.status_code == 201, opened.text
    return opened.json()["session"]["id"]


async def test_session_persistence_writes_the_turn(gw_any_db: Gateway) -> None:
    gw = gw_any_db
    sid = await _open_session(gw)
    client_history = [{"role": "user", "content": "client-only history"},
                      {"role": "assistant", "content": "never stored"},
                      {"role": "user", "content": "remember nonce-34"}]
    async with gw.sdk("alice") as client:
        reply = await client.chat.completions.create(
            model="tina", messages=client_history, extra_body={"metadata": {"session_id": sid}})
        assert "nonce-34" in (reply.choices[0].message.content or "")
        assert reply.usage is not None
        assert reply.usage.completion_tokens > 0
        stream = await client.chat.completions.create(
            model="tina", messages=_user("again nonce-35"), stream=True,
            extra_headers={"X-Personae-Session": sid})
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream
                            if c.choices])
    assert "nonce-35" in streamed
    upstream = [m["content"] for m in gw.server.requests[-1].messages]
    assert "remember nonce-34" in upstream
    assert "client-only history" not in upstream
    history = (await gw.http.get(f"/v1/sessions/{sid}/messages",
                                 headers=gw.as_("alice"))).json()["data"]
    assert [(m["role"], m["content"]) for m in history[1:]] == [
        ("user", "remember nonce-34"), ("assistant", reply.choices[0].message.content),
        ("user", "again nonce-35"), ("assistant", streamed)]


async def test_session_of_another_user_or_persona_is_refused(gw: Gateway) -> None:
    sid = await _open_session(gw, "alice")
    async with gw.sdk("bob") as bob, gw.sdk("alice") as alice:
        with pytest.raises(openai.NotFoundError, match=sid):
            await bob.chat.completions.create(model="tina", messages=_user("hi"),
                                              extra_body={"metadata": {"session_id": sid}})
        with pytest.raises(openai.BadRequestError, match="model"):
            await alice.chat.completions.create(model="mohit", messages=_user("hi"),
                                                extra_body={"metadata": {"session_id": sid}})
    history = (await gw.http.get(f"/v1/sessions/{sid}/messages",
                                 headers=gw.as_("alice"))).json()["data"]
    assert [m["role"] for m in history] == ["assistant"]  # only the greeting


async def _drain(stream: Any, received: list[str]) -> None:
    async for chunk in stream:
        received.append(chunk.choices[0].delta.content or "")


async def test_upstream_failure_mid_stream_is_reported_in_band(gw: Gateway) -> None:
    gw.server.interrupt_after = 1
    received = []
    async with gw.sdk() as client:
        stream = await client.chat.completions.create(
            model="mohit", messages=_user("one two three"), stream=True)
        with pytest.raises(openai.APIError) as caught:
            await _drain(stream, received)
    assert "".join(received) == "one"
    assert caught.value.code in ("provider_error", "provider_unavailable")
    assert "fake" in caught.value.message  # names the provider
