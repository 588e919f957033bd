"""``/health/ready`` and ``/health/detailed``: each dependency checked, the overall
verdict (ok, degraded, down), and who may read the details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from personae.config import ProviderConfig, Settings
from personae.db.engine import head_revision
from tests.support.api import Api, serve_app
from tests.support.personas import MOHIT
from tests.support.servers import free_port

REMOTE = ("203.0.113.7", 5000)


def _remote(api: Api) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.client._transport.app,  # type: ignore[attr-defined]
                                    client=REMOTE)
    return httpx.AsyncClient(transport=transport, base_url="http://personae")


async def test_ready_when_the_database_answers_and_is_migrated(api: Api) -> None:
    response = await api.client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"]["revision"] == head_revision()
    assert body["database"]["latency_ms"] >= 0


async def test_detailed_reports_every_check_and_ok(api: Api) -> None:
    response = await api.client.get("/health/detailed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["problems"]) == ("ok", [])
    assert body["database"]["migrated"] is True
    assert body["redis"] == {"configured": False}
    assert body["queue"]["depth"] == 0 and body["queue"]["active_sessions"] == 0
    assert set(body["disk"]) == {"data_dir", "audio"}
    assert body["disk"]["data_dir"]["free_bytes"] > 0
    assert body["process"]["rss_bytes"] > 0
    assert body["embedded_models"] == [] and body["voice_models"] == []


async def test_detailed_is_for_admins_or_loopback(api: Api) -> None:
    async with _remote(api) as remote:
        nobody = await remote.get("/health/detailed")
        member = await remote.get("/health/detailed", headers=api.as_("alice"))
        admin = await remote.get("/health/detailed", headers=api.as_("admin"))
        ready = await remote.get("/health/ready")
    assert (nobody.status_code, member.status_code, admin.status_code) == (401, 403, 200)
    assert member.json()["error"]["code"] == "forbidden"
    assert ready.status_code == 200  # readiness is for probes: open to all


@pytest.fixture
async def on_sqlite(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False)
    async for harness in serve_app(settings):
        yield harness


async def test_down_and_not_ready_when_the_database_is_gone(on_sqlite: Api) -> None:
    api = on_sqlite
    database = Path(api.runtime.settings.data_dir) / "personae.db"
    assert database.is_file()
    moved = database.with_suffix(".moved")
    await api.runtime.engine.dispose()  # no pooled connection outlives the file
    database.rename(moved)
    database.mkdir()  # where the file was, something SQLite cannot open
    try:
        ready = await api.client.get("/health/ready")
        detailed = await api.client.get("/health/detailed")
    finally:
        database.rmdir()
        moved.rename(database)
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "not_ready"
    assert "unreachable" in ready.json()["error"]["message"]
    assert "Retry-After" in ready.headers
    assert detailed.status_code == 503
    error = detailed.json()["error"]
    assert error["code"] == "down"
    assert error["details"]["status"] == "down"
    assert error["details"]["database"]["ok"] is False


@pytest.fixture
async def dead_redis(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False,
                        redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async for harness in serve_app(settings):
        yield harness


async def test_degraded_when_redis_is_configured_but_down(dead_redis: Api) -> None:
    response = await dead_redis.client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["redis"]["configured"] is True and body["redis"]["ok"] is False
    assert body["redis"]["error"]
    assert any(problem.startswith("redis unreachable") for problem in body["problems"])


@pytest.fixture
async def dead_provider(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    dead = ProviderConfig(kind="openai", base_url=f"http://127.0.0.1:{free_port()}/v1",
                          api_key="k", model="m", max_retries=0, timeout_seconds=2)
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False,
                        default_provider="dead", providers={"dead": dead},
                        breaker_failures=2)
    async for harness in serve_app(settings):
        yield harness


async def test_degraded_when_a_providers_breaker_is_open(dead_provider: Api) -> None:
    api = dead_provider
    created = await api.client.post("/v1/personas", json={"definition": MOHIT, "global": True},
                                    headers=api.as_("admin"))
    assert created.status_code == 201, created.text
    sid = (await api.client.post("/v1/sessions", json={"persona_id": "mohit"},
                                 headers=api.as_("alice"))).json()["session"]["id"]
    before = (await api.client.get("/health/detailed")).json()
    for text in ("one", "two"):
        reply = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": text},
                                      headers=api.as_("alice"))
        assert reply.status_code >= 500
    body = (await api.client.get("/health/detailed")).json()
    assert before["status"] == "ok"
    assert body["status"] == "degraded"
    dead = body["providers"]["dead"]
    assert dead["state"] == "open"
    assert dead["last_error"] and dead["last_failure_at"] and dead["last_success_at"] is None
    assert "provider dead: circuit open" in body["problems"]
