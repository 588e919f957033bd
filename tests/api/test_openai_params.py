"""Every chat-completions field honoured or refused by name, keys as local servers take
them, and OpenAI's error shape for every failure: driven by the official ``openai`` SDK.

The app runs in process (httpx ASGI transport) on the scripted model, which records
the settings each generation was asked for; the key tests also run a real
``personae serve`` process.
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
from fastapi import APIRouter, FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from personae.api.app import create_app
from personae.api.errors import install_error_handlers
from personae.api.routes.openai_compat import OpenAIRoute
from personae.auth.principal import Role
from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError
from personae.providers.base import GenerationSettings
from personae.providers.fake import ScriptedLLM
from personae.runtime import Runtime
from tests.conftest import sqlite_url_for
from tests.support.servers import ServeProcess, serve_processes

BASE = "http://personae"
WARM = {"id": "warm", "name": "Warm Coach", "system_prompt": "Be encouraging.",
        "model": {"temperature": 0.9, "max_tokens": 400, "top_p": 0.95}}
SCRIPTED = {"scripted": ProviderConfig(kind="scripted")}
PLACEHOLDERS = ("x", "local", "DUMMY_KEY", "sk-1234", "fake-api-key")


@dataclass
class App:
    app: FastAPI
    http: httpx.AsyncClient
    llm: ScriptedLLM
    key: str

    def sdk(self, key: str | None = None,
            client: tuple[str, int] = ("127.0.0.1", 123)) -> openai.AsyncOpenAI:
        transport = httpx.ASGITransport(app=self.app, client=client)
        return openai.AsyncOpenAI(base_url=f"{BASE}/v1", api_key=key or self.key,
                                  max_retries=0,
                                  http_client=httpx.AsyncClient(transport=transport))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def settings(self) -> GenerationSettings:
        return self.llm.last_request.settings


async def _serve(settings: Settings) -> AsyncIterator[App]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await runtime.users.create_user("alice", Role.member)
        key, _ = await runtime.users.create_key("alice")
        admin = await runtime.auth.local_admin()
        await runtime.personas.create(admin, WARM, global_scope=True)
        llm = runtime.providers.get("scripted")
        assert isinstance(llm, ScriptedLLM)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield App(app, http, llm, key)


@pytest.fixture
async def api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[App]:
    """Keys required (as on a server reachable from other machines)."""
    async for app in _serve(Settings(data_dir=tmp_path, database_url=sqlite_url,
                                     default_provider="scripted", providers=SCRIPTED,
                                     anonymous_loopback=False)):
        yield app


@pytest.fixture
async def keyless(sqlite_url: str, tmp_path: Path) -> AsyncIterator[App]:
    """A loopback server in keyless mode (the default)."""
    async for app in _serve(Settings(data_dir=tmp_path, database_url=sqlite_url,
                                     default_provider="scripted", providers=SCRIPTED)):
        yield app


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def _session(app: App) -> str:
    opened = await app.http.post("/v1/sessions", json={"persona_id": "warm"},
                                 headers=app.auth)
    assert opened.status_code == 201, opened.text
    session_id: str = opened.json()["session"]["id"]
    return session_id


# -- keys ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_placeholder_keys_act_as_the_local_admin_on_a_loopback_server(
        tmp_path: Path) -> None:
    database = sqlite_url_for(tmp_path)
    alice, revoked = await _alice_keys(Settings(data_dir=tmp_path, database_url=database))
    server = ServeProcess(database, tmp_path, env={
        "PERSONAE_DEFAULT_PROVIDER": "scripted",
        "PERSONAE_PROVIDERS": json.dumps({"scripted": {"kind": "scripted"}})})
    with serve_processes(server):
        for placeholder in PLACEHOLDERS:
            async with _served_sdk(server.url, placeholder) as client:
                reply = await client.chat.completions.create(
                    model="python-tutor", messages=_user(f"hi {placeholder}"))
            assert reply.choices[0].message.content == f"hi {placeholder}"
        async with httpx.AsyncClient(base_url=server.url) as http:
            me = await http.get("/v1/me", headers={"Authorization": "Bearer x"})
            as_alice = await http.get("/v1/me", headers={"Authorization": f"Bearer {alice}"})
        assert (me.status_code, me.json()["role"]) == (200, "admin")
        assert as_alice.json()["name"] == "alice"  # a real key is still its owner
        for bad in (revoked, "pk_never-issued"):
            async with _served_sdk(server.url, bad) as client:
                with pytest.raises(openai.AuthenticationError, match="not valid"):
                    await client.models.list()
        await _websocket_keys(server.url, revoked)


def _served_sdk(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{url}/v1", max_retries=0)


async def _alice_keys(settings: Settings) -> tuple[str, str]:
    """Alice's live key, and one of hers that was revoked, in the server's database."""
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.users.create_user("alice", Role.member)
        live, _ = await runtime.users.create_key("alice", "live")
        revoked, record = await runtime.users.create_key("alice", "old")
        await runtime.users.revoke_key(record.id)
        return live, revoked
    finally:
        await runtime.close()


async def _websocket_keys(url: str, revoked: str) -> None:
    """``?api_key=`` follows the same rule as the Authorization header."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer x"}) as http:
        opened = await http.post("/v1/sessions", json={"persona_id": "python-tutor"})
    session_id = opened.json()["session"]["id"]
    ws_url = f"{url.replace('http', 'ws', 1)}/v1/sessions/{session_id}/ws"
    async with connect(f"{ws_url}?api_key=local") as ws:
        await ws.send(json.dumps({"type": "message", "content": "over the socket"}))
        event = json.loads(await ws.recv())
        while event["type"] not in ("done", "error"):
            event = json.loads(await ws.recv())
    assert event["type"] == "done"
    assert event["message"]["content"] == "over the socket"
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(f"{ws_url}?api_key={revoked}") as ws:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_placeholder_keys_are_refused_when_keys_are_required(api: App) -> None:
    async with api.sdk("x") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.models.list()
    assert caught.value.type == "authentication_error"


async def test_placeholder_keys_are_refused_from_another_machine(keyless: App) -> None:
    async with keyless.sdk("x", client=("203.0.113.7", 5000)) as remote:
        with pytest.raises(openai.AuthenticationError):
            await remote.models.list()
    async with keyless.sdk("x") as local:
        assert "warm" in {model.id async for model in local.models.list()}


# -- settings: honoured in both modes ---------------------------------------------------

CALLER = {"max_tokens": 20, "temperature": 0.2, "top_p": 0.5, "stop": ["END"], "seed": 7,
          "presence_penalty": 0.5, "frequency_penalty": -0.5, "user": "end-user-1",
          "response_format": {"type": "json_object"}}


def _assert_caller_settings(settings: GenerationSettings) -> None:
    assert (settings.max_tokens, settings.temperature, settings.top_p, settings.stop,
            settings.seed) == (20, 0.2, 0.5, ("END",), 7)
    assert (settings.presence_penalty, settings.frequency_penalty, settings.user) == (
        0.5, -0.5, "end-user-1")
    assert settings.json_object and settings.json_schema is None


@pytest.mark.parametrize("stream", [False, True])
async def test_session_mode_honours_the_callers_settings(api: App, stream: bool) -> None:
    session_id = await _session(api)
    async with api.sdk() as client:
        reply = await client.chat.completions.create(
            model="warm", messages=_user("nonce-41"), stream=stream,
            extra_body={"metadata": {"session_id": session_id}}, **CALLER)
        text = ("".join([c.choices[0].delta.content or "" async for c in reply if c.choices])
                if stream else reply.choices[0].message.content)
    _assert_caller_settings(api.settings)
    assert json.loads(text or "") == {"reply": "nonce-41"}
    history = (await api.http.get(f"/v1/sessions/{session_id}/messages",
                                  headers=api.auth)).json()["data"]
    assert history[-1]["content"] == text  # saved to the session, as before


async def test_max_completion_tokens_wins_over_the_personas_in_a_session(api: App) -> None:
    session_id = await _session(api)
    async with api.sdk() as client:
        await client.chat.completions.create(
            model="warm", messages=_user("short"), max_completion_tokens=20,
            extra_headers={"X-Personae-Session": session_id})
    assert api.settings.max_tokens == 20
    assert api.settings.temperature == 0.9  # the persona's, where the caller set none


async def test_stateless_mode_honours_the_callers_settings(api: App) -> None:
    async with api.sdk() as client:
        reply = await client.chat.completions.create(model="warm",
                                                     messages=_user("nonce-42"), **CALLER)
    _assert_caller_settings(api.settings)
    assert json.loads(reply.choices[0].message.content or "") == {"reply": "nonce-42"}


# -- n choices --------------------------------------------------------------------------


async def test_n_choices_are_generated_with_distinct_seeds(api: App) -> None:
    async with api.sdk() as client:
        single = await client.chat.completions.create(model="warm", messages=_user("a b c"))
        reply = await client.chat.completions.create(model="warm", messages=_user("a b c"),
                                                     n=3, seed=10)
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert {choice.message.content for choice in reply.choices} == {"a b c"}
    assert sorted(r.settings.seed or 0 for r in api.llm.requests[-3:]) == [10, 11, 12]
    assert single.usage is not None and reply.usage is not None
    assert reply.usage.completion_tokens == 3 * single.usage.completion_tokens
    assert reply.usage.prompt_tokens == 3 * single.usage.prompt_tokens


async def test_streamed_n_choices_each_finish_and_share_one_usage_chunk(api: App) -> None:
    api.llm.queue(["first ", "reply"], ["second ", "reply"])
    async with api.sdk() as client:
        stream = await client.chat.completions.create(
            model="warm", messages=_user("go"), n=2, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    texts = {0: "", 1: ""}
    finishes = []
    for chunk in chunks[:-1]:
        (choice,) = chunk.choices
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finishes.append(choice.index)
    assert sorted(texts.values()) == ["first reply", "second reply"]
    assert sorted(finishes) == [0, 1]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_a_failing_choice_fails_the_request(api: App) -> None:
    api.llm.queue(ProviderError("scripted", "boom"), "fine")
    async with api.sdk() as client:
        with pytest.raises(openai.APIStatusError, match="boom") as whole:
            await client.chat.completions.create(model="warm", messages=_user("go"), n=2)
        assert whole.value.status_code == 502
        api.llm.queue(["one ", ProviderError("scripted", "cut")], ["two ", "three"])
        stream = await client.chat.completions.create(model="warm", messages=_user("go"),
                                                      n=2, stream=True)
        with pytest.raises(openai.APIError, match="cut"):  # reported in-band
            async for _ in stream:
                pass
    assert api.llm.pending == 0


async def test_too_many_choices_or_choices_in_a_session_are_refused(api: App) -> None:
    session_id = await _session(api)
    async with api.sdk() as client:
        with pytest.raises(openai.BadRequestError, match="from 1 to 4") as too_many:
            await client.chat.completions.create(model="warm", messages=_user("hi"), n=5)
        with pytest.raises(openai.BadRequestError, match="one reply") as in_session:
            await client.chat.completions.create(
                model="warm", messages=_user("hi"), n=2,
                extra_body={"metadata": {"session_id": session_id}})
    assert too_many.value.param == in_session.value.param == "n"


# -- fields: neutral values accepted, the rest refused by name --------------------------

NEUTRAL = {"logprobs": False, "top_logprobs": 0, "n": 1, "store": False,
           "parallel_tool_calls": True, "service_tier": "auto", "tool_choice": "none",
           "tools": [], "logit_bias": {}, "modalities": ["text"]}
# What LiteLLM and other wrappers send for fields the caller left unset.
NULLS = {name: None for name in (
    "temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice", "user",
    "logprobs", "response_format", "metadata", "stream_options", "audio", "functions",
    "web_search_options", "reasoning_effort")}


@pytest.mark.parametrize("fields", [NEUTRAL, NULLS, {"stream_options": {"include_usage": None}},
                                    {"metadata": {"trace": "t-1", "session_id": None}}],
                         ids=["neutral", "nulls", "null-option", "labels"])
async def test_neutral_values_and_nulls_are_accepted(api: App, fields: dict[str, Any]) -> None:
    body = {"model": "warm", "messages": _user("fine"), **fields}
    response = await api.http.post("/v1/chat/completions", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "fine"


@pytest.mark.parametrize(("fields", "param", "says"), [
    ({"logprobs": True}, "logprobs", "log-probabilities are not available"),
    ({"top_logprobs": 2}, "top_logprobs", "log-probabilities"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tool calling"),
    ({"functions": [{"name": "f"}]}, "functions", "tool calling"),
    ({"tool_choice": "auto"}, "tool_choice", "only 'none'"),
    ({"store": True}, "store", "not stored"),
    ({"service_tier": "flex"}, "service_tier", "one service tier"),
    ({"logit_bias": {"50256": -100}}, "logit_bias", "token biases"),
    ({"modalities": ["text", "audio"]}, "modalities", "text only"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "audio output"),
    ({"reasoning_effort": "low"}, "reasoning_effort", "reasoning effort"),
    ({"temprature": 0.5}, "temprature", "did you mean 'temperature'"),
    ({"frobnicate": 1}, "frobnicate", "not a supported chat-completions field"),
    ({"stream_options": {"chunk_size": 3}}, "stream_options.chunk_size", "stream option"),
])
async def test_fields_that_cannot_be_honoured_are_refused_by_name(
        api: App, fields: dict[str, Any], param: str, says: str) -> None:
    async with api.sdk() as client:
        with pytest.raises(openai.BadRequestError, match=says) as caught:
            await client.chat.completions.create(model="warm", messages=_user("hi"),
                                                 extra_body=fields)
    assert caught.value.param == param
    assert caught.value.code == "unsupported_parameter"
    assert api.llm.requests == []  # refused before any generation


@pytest.mark.parametrize(("fields", "param"), [
    ({"seed": "seven"}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": "high"}, "frequency_penalty"),
    ({"user": 42}, "user"),
    ({"metadata": {"user_name": "x" * 65}}, "metadata.user_name"),
    ({"metadata": {"trace": 7}}, "metadata.trace"),
    ({"stream_options": {"include_obfuscation": True}}, "stream_options.include_obfuscation"),
])
async def test_bad_values_of_honoured_fields_name_the_field(
        api: App, fields: dict[str, Any], param: str) -> None:
    body = {"model": "warm", "messages": _user("hi"), **fields}
    response = await api.http.post("/v1/chat/completions", json=body, headers=api.auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert error["message"].startswith(f"{param}: ")


# -- OpenAI's error shape for every failure ---------------------------------------------


def _openai_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert {"type", "message", "param", "code"} <= set(error)
    return error


async def test_router_errors_on_openai_paths_are_in_openai_shape(api: App) -> None:
    wrong_method = await api.http.get("/v1/chat/completions", headers=api.auth)
    error = _openai_shape(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"
    assert (error["type"], error["code"]) == ("invalid_request_error", "method_not_allowed")
    missing = await api.http.post("/v1/chat/complete", json={}, headers=api.auth)
    assert _openai_shape(missing, 404)["code"] == "not_found"
    elsewhere = await api.http.get("/v1/nothing-here", headers=api.auth)
    assert set(elsewhere.json()["error"]) == {"code", "message", "details"}  # app-wide shape
    async with api.sdk() as client:
        with pytest.raises(openai.NotFoundError):
            await client.post("/chat/complete", cast_to=object, body={})
        with pytest.raises(openai.APIStatusError) as caught:
            await client.get("/chat/completions", cast_to=object)
    assert caught.value.status_code == 405


async def test_each_failure_maps_to_the_sdks_exception_class(api: App) -> None:
    async with api.sdk() as client, api.sdk("pk_not-a-key") as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.chat.completions.create(model="warm", messages=_user("hi"))
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="nobody", messages=_user("hi"))
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="warm", messages=_user("hi"),
                                                 logprobs=True)
    assert missing.value.param == "model"
    assert (bad.value.param, bad.value.type) == ("logprobs", "invalid_request_error")


def _validated_app(route_class: type | None) -> FastAPI:
    """A route FastAPI validates (a typed query parameter), under /v1/models."""
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=route_class) if route_class else APIRouter()

    @router.get("/v1/models-page")
    async def page(limit: int) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/v1/models/{model_id}/page")
    async def model_page(model_id: str, limit: int) -> dict[str, int]:
        return {"limit": limit}

    app.include_router(router)
    return app


@pytest.mark.parametrize("route_class", [OpenAIRoute, None], ids=["openai-route", "app-wide"])
async def test_fastapi_validation_errors_are_openai_bad_requests(route_class: type | None
                                                                 ) -> None:
    app = _validated_app(route_class)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        path = "/v1/models-page" if route_class else "/v1/models/tina/page"
        response = await http.get(f"{path}?limit=many")
    error = _openai_shape(response, 400)
    assert (error["param"], error["code"], error["type"]) == (
        "query.limit", "invalid_input", "invalid_request_error")
    assert "limit" in error["message"]
