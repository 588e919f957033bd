"""When something the API needs is away: every 503 says when to try again, and a turn
the model failed is kept in the history but not counted among the session's turns."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.api.errors import DEFAULT_RETRY_AFTER_SECONDS
from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError
from personae.providers.fake.scripted import ScriptedLLM
from tests.support.api import Api, serve_app

RESET_SECONDS = 30
WORKING = {"id": "ada", "name": "Ada", "language": "en"}
NOWHERE = {"id": "lost", "name": "Lost", "language": "en", "model": {"provider": "nowhere"}}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on a scripted model (breaker: one failure opens it), its queue a Redis
    that is not there."""
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
        default_provider="scripted", breaker_failures=1, breaker_reset_seconds=RESET_SECONDS,
        providers={"scripted": ProviderConfig(kind="scripted", max_retries=0)},
        queue="arq", redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async for harness in serve_app(settings):
        for definition in (WORKING, NOWHERE):
            created = await harness.client.post("/v1/personas", json={
                "definition": definition, "global": True}, headers=harness.as_("admin"))
            assert created.status_code == 201, created.text
        yield harness


async def _session(api: Api, persona_id: str) -> str:
    opened = await api.client.post("/v1/sessions", json={"persona_id": persona_id},
                                   headers=api.as_("alice"))
    assert opened.status_code == 201, opened.text
    session_id: str = opened.json()["session"]["id"]
    return session_id


async def _say(api: Api, session_id: str, text: str = "hello") -> Any:
    return await api.client.post(f"/v1/sessions/{session_id}/messages",
                                 json={"content": text}, headers=api.as_("alice"))


def _scripted(api: Api) -> ScriptedLLM:
    llm = api.runtime.providers.get("scripted")
    assert isinstance(llm, ScriptedLLM)
    return llm


async def test_a_failed_turn_answers_503_with_retry_after(api: Api) -> None:
    failed = await _say(api, await _session(api, "lost"))
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "provider_unavailable"
    assert failed.headers["retry-after"] == str(DEFAULT_RETRY_AFTER_SECONDS)


async def test_an_open_circuit_names_its_own_wait(api: Api) -> None:
    session_id = await _session(api, "ada")
    _scripted(api).queue(ProviderError("scripted", "upstream 500", retryable=True))
    assert (await _say(api, session_id)).status_code == 502  # this failure opens it
    refused = await _say(api, session_id)
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= RESET_SECONDS


async def test_the_app_wide_handler_adds_retry_after_to_every_503(api: Api) -> None:
    response = await api.client.post("/v1/evaluations", json={
        "content": "One sentence. Another one.", "personas": ["ada"]},
        headers=api.as_("alice"))
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert response.headers["retry-after"] == str(DEFAULT_RETRY_AFTER_SECONDS)


async def test_the_openai_route_adds_retry_after_to_every_503(api: Api) -> None:
    response = await api.client.post("/v1/chat/completions", json={
        "model": "lost", "messages": [{"role": "user", "content": "hi"}]},
        headers=api.as_("alice"))
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "provider_unavailable"
    assert response.headers["retry-after"] == str(DEFAULT_RETRY_AFTER_SECONDS)


async def test_failed_turns_are_not_counted_as_turns(api: Api) -> None:
    session_id = await _session(api, "ada")
    assert (await _say(api, session_id, "first")).status_code == 200
    _scripted(api).queue(ProviderError("scripted", "bad request", retryable=False))
    failed = await _say(api, session_id, "second")
    assert failed.status_code == 502
    assert failed.json()["error"]["details"]["message"]["status"] == "failed"
    session = (await api.client.get(f"/v1/sessions/{session_id}",
                                    headers=api.as_("alice"))).json()
    assert session["turns"] == 1
    history = (await api.client.get(f"/v1/sessions/{session_id}/messages",
                                    headers=api.as_("alice"))).json()
    assert [m["status"] for m in history["data"] if m["role"] == "assistant"] == [
        "complete", "failed"]
