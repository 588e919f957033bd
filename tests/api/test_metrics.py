"""``GET /metrics`` after real traffic (REST, SSE, WebSocket, a refusal), parsed with
prometheus_client's own parser; who may read it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from websockets.asyncio.client import connect

from personae.api.app import create_app
from personae.auth.principal import Role
from personae.config import ProviderConfig, RateLimits, Settings
from personae.errors import ProviderError, ProviderTimeout
from personae.providers.fake.scripted import ScriptedLLM
from tests.support.api import Api, serve_app
from tests.support.personas import MOHIT

FAMILIES = {
    "personae_http_requests": "counter", "personae_http_request_duration_seconds": "histogram",
    "personae_turns": "counter", "personae_turn_first_token_seconds": "histogram",
    "personae_tokens": "counter", "personae_turn_errors": "counter",
    "personae_provider_breaker_state": "gauge", "personae_provider_retries": "counter",
    "personae_jobs": "gauge", "personae_jobs_failed": "counter",
    "personae_voice_stage_seconds": "histogram", "personae_active_sessions": "gauge",
    "personae_open_sockets": "gauge", "personae_rate_limited": "counter",
    "personae_cache_lookups": "counter"}
REMOTE = ("203.0.113.7", 5000)


@dataclass
class Served:
    url: str
    keys: dict[str, str]
    model: ScriptedLLM

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def _settings(tmp_path: Path, sqlite_url: str, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False,
                    default_provider="model",
                    providers={"model": ProviderConfig(kind="scripted", max_retries=1)},
                    rate_limits={"member": RateLimits(other="12/minute"),
                                 "admin": RateLimits(other=None, writes=None)},
                    **fields)  # type: ignore[arg-type]


@pytest.fixture
async def served(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    """The app served by uvicorn in this loop (WebSockets need a real server)."""
    app = create_app(_settings(tmp_path, sqlite_url))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        keys = {}
        for name, role in (("admin", Role.admin), ("alice", Role.member)):
            await runtime.users.create_user(name, role)
            keys[name], _ = await runtime.users.create_key(name)
        model = runtime.providers.get("model")
        assert isinstance(model, ScriptedLLM)
        listening = socket.create_server(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            yield Served(f"http://127.0.0.1:{listening.getsockname()[1]}", keys, model)
        finally:
            server.should_exit = True
            await serving


def _families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {family.name: (family.type, family.samples)
            for family in text_string_to_metric_families(text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, f"no {name} sample with {labels}"
    return sum(found)


async def _scrape(client: httpx.AsyncClient) -> dict[str, tuple[str, list[Sample]]]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _families(response.text)


async def _traffic(client: httpx.AsyncClient, served: Served) -> str:
    alice = served.as_("alice")
    created = await client.post("/v1/personas", json={"definition": MOHIT, "global": True},
                                headers=served.as_("admin"))
    assert created.status_code == 201, created.text
    for _ in range(2):  # a miss, then a hit of the persona cache
        assert (await client.get("/v1/personas/mohit", headers=alice)).status_code == 200
    assert (await client.get("/no/such/path")).status_code == 404
    sid = (await client.post("/v1/sessions", json={"persona_id": "mohit"},
                             headers=alice)).json()["session"]["id"]
    # One retried attempt (a timeout, then the reply), then a turn that fails for good.
    served.model.queue(ProviderTimeout("model", "slow", retryable=True), "first reply")
    served.model.queue(ProviderError("model", "refused"))
    for text in ("hello there", "this one fails"):
        await client.post(f"/v1/sessions/{sid}/messages", json={"content": text},
                          headers=alice)
    async with client.stream("POST", f"/v1/sessions/{sid}/messages",
                             json={"content": "streamed", "stream": True},
                             headers=alice) as streamed:
        assert streamed.status_code == 200
        body = "".join([line async for line in streamed.aiter_lines()])
    assert '"done"' in body
    return sid


async def _socket_turn(served: Served, client: httpx.AsyncClient, sid: str) -> None:
    url = served.url.replace("http", "ws", 1) + f"/v1/sessions/{sid}/ws"
    async with connect(f"{url}?api_key={served.keys['alice']}") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        assert ws.response is not None and ws.response.headers["x-request-id"]
        families = await _scrape(client)
        assert _value(families["personae_open_sockets"][1], "personae_open_sockets",
                      kind="session") == 1
        await ws.send(json.dumps({"type": "message", "content": "over the socket"}))
        while json.loads(await ws.recv())["type"] not in ("done", "error"):
            pass


async def _refused(client: httpx.AsyncClient, served: Served) -> None:
    for _ in range(30):
        if (await client.get("/v1/me", headers=served.as_("alice"))).status_code == 429:
            return
    pytest.fail("alice's 'other' budget was never spent")


async def test_every_family_after_real_traffic(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        sid = await _traffic(client, served)
        await _socket_turn(served, client, sid)
        await _refused(client, served)
        families = await _scrape(client)
    assert {name: kind for name, (kind, _) in families.items()
            if name in FAMILIES} == FAMILIES
    samples = {name: found for name, (_, found) in families.items()}
    http = samples["personae_http_requests"]
    assert _value(http, "personae_http_requests_total", method="GET",
                  route="/v1/personas/{persona_id}", status="200") == 2
    assert _value(http, "personae_http_requests_total", route="unmatched", status="404") == 1
    assert _value(samples["personae_http_request_duration_seconds"],
                  "personae_http_request_duration_seconds_count",
                  route="/v1/sessions/{session_id}/messages") == 3
    turns = samples["personae_turns"]
    assert _value(turns, "personae_turns_total", persona="mohit", status="complete") == 3
    assert _value(turns, "personae_turns_total", persona="mohit", status="failed") == 1
    assert _value(samples["personae_turn_first_token_seconds"],
                  "personae_turn_first_token_seconds_count", persona="mohit") == 3
    assert _value(samples["personae_tokens"], "personae_tokens_total", kind="prompt") > 0
    assert _value(samples["personae_tokens"], "personae_tokens_total", kind="completion") > 0
    assert _value(samples["personae_turn_errors"], "personae_turn_errors_total",
                  persona="mohit", code="provider_error") == 1
    assert _value(samples["personae_provider_breaker_state"],
                  "personae_provider_breaker_state", provider="model") == 0
    assert _value(samples["personae_provider_retries"], "personae_provider_retries_total",
                  provider="model") == 1
    assert _value(samples["personae_jobs"], "personae_jobs", kind="panel", state="queued") == 0
    assert _value(samples["personae_active_sessions"], "personae_active_sessions") == 1
    assert _value(samples["personae_open_sockets"], "personae_open_sockets",
                  kind="session") == 0
    assert _value(samples["personae_rate_limited"], "personae_rate_limited_total",
                  route_class="other", scope="requests") >= 1
    lookups = samples["personae_cache_lookups"]
    for cache in ("personas", "keys"):
        for result in ("hit", "miss"):
            assert _value(lookups, "personae_cache_lookups_total", cache=cache,
                          result=result) >= 1


# -- who may read it ---------------------------------------------------------------------


@pytest.fixture
async def guarded(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = _settings(tmp_path, sqlite_url, metrics_token=SecretStr("scrape-secret"))
    async for harness in serve_app(settings):
        yield harness


def _remote(api: Api) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.client._transport.app,  # type: ignore[attr-defined]
                                    client=REMOTE)
    return httpx.AsyncClient(transport=transport, base_url="http://personae")


async def test_loopback_reads_metrics_without_a_key(guarded: Api) -> None:
    response = await guarded.client.get("/metrics")
    assert response.status_code == 200
    assert "personae_http_requests_total" in response.text


async def test_other_addresses_need_the_token_or_an_admin_key(guarded: Api) -> None:
    async with _remote(guarded) as remote:
        nobody = await remote.get("/metrics")
        wrong = await remote.get("/metrics", headers={"Authorization": "Bearer nope"})
        member = await remote.get("/metrics", headers=guarded.as_("alice"))
        admin = await remote.get("/metrics", headers=guarded.as_("admin"))
        token = await remote.get("/metrics",
                                 headers={"Authorization": "Bearer scrape-secret"})
    assert (nobody.status_code, wrong.status_code, member.status_code) == (401, 401, 403)
    assert nobody.json()["error"]["code"] == "unauthenticated"
    assert member.json()["error"]["code"] == "forbidden"
    assert (admin.status_code, token.status_code) == (200, 200)
    assert "personae_active_sessions" in token.text


async def test_metrics_answer_404_when_disabled(sqlite_url: str, tmp_path: Path) -> None:
    async for api in serve_app(_settings(tmp_path, sqlite_url, metrics_enabled=False)):
        response = await api.client.get("/metrics")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
