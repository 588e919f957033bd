"""Wrong API keys are counted per client address: past ``auth_failures_limit`` an
address's key attempts get 429 without being checked, on every route and socket, in
every process sharing the limiter's storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from personae.api.app import create_app
from personae.config import Settings
from personae.errors import RateLimited
from personae.ops.ratelimit import RateLimiter
from tests.support.api import Api, serve_app

WRONG_KEY = "pk_" + "0" * 43
LIMIT = "3/minute"


def _settings(database_url: str, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                    auth_failures_limit=LIMIT, **changes)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in serve_app(_settings(database_url, tmp_path)):
        yield harness


def _client(api: Api, host: str) -> httpx.AsyncClient:
    app = api.client._transport.app  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 5)),
                             base_url="http://personae")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _blocked(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "rate_limited"
    details = error["details"]
    assert details["scope"] == "auth_failures" and details["limit"] == "3/minute"
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 60 and details["retry_after"] == retry
    assert f"retry in {retry} s" in error["message"]
    return error


async def test_an_address_trying_wrong_keys_is_refused_before_its_keys_are_checked(
        api: Api) -> None:
    guesser, other = _client(api, "198.51.100.1"), _client(api, "198.51.100.2")
    async with guesser, other:
        for _ in range(3):
            assert (await guesser.get("/v1/me", headers=_bearer(WRONG_KEY))).status_code == 401
        _blocked(await guesser.get("/v1/me", headers=_bearer(WRONG_KEY)))
        _blocked(await guesser.get("/v1/me", headers=_bearer(api.keys["alice"])))
        _blocked(await guesser.get("/v1/personas", headers={"X-API-Key": api.keys["bob"]}))
        assert (await other.get("/v1/me", headers=_bearer(api.keys["alice"]))).status_code == 200
        assert (await other.get("/v1/me", headers=_bearer(WRONG_KEY))).status_code == 401


async def test_the_x_api_key_header_and_the_openai_route_count_too(api: Api) -> None:
    async with _client(api, "198.51.100.3") as guesser:
        for _ in range(3):
            answer = await guesser.get("/v1/me", headers={"X-API-Key": WRONG_KEY})
            assert answer.status_code == 401
        refused = await guesser.post("/v1/chat/completions", headers=_bearer(WRONG_KEY),
                                     json={"model": "x", "messages": []})
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "auth_failures"


async def test_successful_requests_are_not_counted(api: Api) -> None:
    async with _client(api, "198.51.100.4") as client:
        for _ in range(10):
            assert (await client.get("/v1/me", headers=_bearer(api.keys["alice"]))
                    ).status_code == 200
        statuses = [(await client.get("/v1/me", headers=_bearer(WRONG_KEY))).status_code
                    for _ in range(4)]
        assert statuses == [401, 401, 401, 429]


async def test_with_limits_switched_off_nothing_is_refused(database_url: str,
                                                           tmp_path: Path) -> None:
    settings = _settings(database_url, tmp_path, rate_limits_enabled=False)
    async for api in serve_app(settings):
        statuses = [(await api.client.get("/v1/me", headers=_bearer(WRONG_KEY))).status_code
                    for _ in range(6)]
        assert statuses == [401] * 6
        assert (await api.client.get("/v1/me", headers=api.as_("alice"))).status_code == 200


async def test_keyless_loopback_callers_never_fail(database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url,
                        auth_failures_limit="1/minute")
    assert settings.keyless_allowed
    async for api in serve_app(settings):
        for placeholder in ("x", "sk-1234", "DUMMY_KEY", "x", "sk-1234"):
            answer = await api.client.get("/v1/me", headers=_bearer(placeholder))
            assert answer.status_code == 200 and answer.json()["name"] == "local"
        assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 200


def test_a_websocket_with_wrong_keys_is_closed_with_4429(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    app = create_app(_settings(sqlite_url, tmp_path))
    with TestClient(app, client=("198.51.100.5", 5000)) as client:
        codes = []
        for _ in range(4):
            with client.websocket_connect(f"/v1/sessions/nope/ws?api_key={WRONG_KEY}") as ws:
                closed = ws.receive()
            assert closed["type"] == "websocket.close"
            codes.append(closed["code"])
            reason = closed.get("reason", "")
        assert codes == [4401, 4401, 4401, 4429]
        assert "retry in" in reason


async def test_limiters_on_one_redis_share_the_failure_count(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, auth_failures_limit=LIMIT)
    one, two = RateLimiter(settings), RateLimiter(settings)
    for limiter in (one, two):
        await limiter.open()
    try:
        for limiter in (one, two, one):
            await limiter.check_auth_failures("198.51.100.6")
            await limiter.count_auth_failure("198.51.100.6")
        with pytest.raises(RateLimited, match="failed authentications"):
            await two.check_auth_failures("198.51.100.6")
        await one.check_auth_failures("198.51.100.7")  # another address: not refused
        assert one.failed_open == 0 and two.failed_open == 0
    finally:
        for limiter in (one, two):
            await limiter.close()


@pytest.mark.parametrize("value", ["twenty/minute", "0/minute", "", 20])
def test_a_bad_limit_stops_the_settings_naming_it(value: object) -> None:
    with pytest.raises(ValidationError, match=r"auth_failures_limit: .* is not a rate limit"):
        Settings(auth_failures_limit=value)


async def test_an_unlimited_setting_counts_nothing() -> None:
    limiter = RateLimiter(Settings(auth_failures_limit="unlimited"))
    await limiter.open()
    try:
        for _ in range(50):
            await limiter.count_auth_failure("198.51.100.8")
        await limiter.check_auth_failures("198.51.100.8")
    finally:
        await limiter.close()
