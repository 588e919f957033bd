"""Request ids (accepted, made, returned, bad ones replaced), rate-limit and security
headers, and CORS (off by default; on for the configured origins only)."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from personae.config import Settings
from personae.ops.logging import ACCESS_LOGGER
from tests.support.api import Api, serve_app

MADE = re.compile(r"[0-9a-f]{32}")
ORIGIN = "https://app.example"


@pytest.fixture
async def app_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False)
    async for harness in serve_app(settings):
        yield harness


@pytest.fixture
async def cors_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False,
                        cors_origins=[ORIGIN])
    async for harness in serve_app(settings):
        yield harness


async def test_a_well_formed_request_id_is_kept_and_returned(app_api: Api) -> None:
    for given in ("abc-123", "trace:7f.x_Y", "a" * 128):
        response = await app_api.client.get("/health", headers={"X-Request-ID": given})
        assert response.headers["x-request-id"] == given


async def test_a_request_id_is_made_when_missing_or_bad(app_api: Api) -> None:
    made = [(await app_api.client.get("/health", headers=headers)).headers["x-request-id"]
            for headers in ({}, {"X-Request-ID": "has spaces"}, {"X-Request-ID": "a" * 129},
                            {"X-Request-ID": "quote\"s"}, {"X-Request-ID": ""})]
    assert all(MADE.fullmatch(each) for each in made), made
    assert len(set(made)) == len(made)


async def test_errors_and_refused_bodies_carry_the_id_too(app_api: Api) -> None:
    missing = await app_api.client.get("/v1/personas/nobody", headers={
        **app_api.as_("alice"), "X-Request-ID": "req-404"})
    unauthenticated = await app_api.client.get("/v1/me", headers={"X-Request-ID": "req-401"})
    too_large = await app_api.client.post(
        "/v1/personas", content=b"x" * (app_api.runtime.settings.max_body_bytes + 1),
        headers={**app_api.as_("alice"), "X-Request-ID": "req-413",
                 "Content-Type": "application/json"})
    assert [(r.status_code, r.headers["x-request-id"]) for r in
            (missing, unauthenticated, too_large)] == [(404, "req-404"), (401, "req-401"),
                                                      (413, "req-413")]


async def test_json_answers_say_nosniff_and_carry_rate_limit_headers(app_api: Api) -> None:
    response = await app_api.client.get("/v1/me", headers=app_api.as_("alice"))
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers  # only HTML gets one
    limit = int(response.headers["ratelimit-limit"])
    assert 0 <= int(response.headers["ratelimit-remaining"]) < limit
    assert int(response.headers["ratelimit-reset"]) >= 1


async def test_html_gets_the_security_headers_and_docs_its_script_hash(app_api: Api) -> None:
    response = await app_api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src", 1)[1].split(";", 1)[0]
    # The page's own scripts are allowed: the bundle from this origin, the inline start
    # by its hash; so Swagger UI still runs under the policy.
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    bundle = re.search(r'<script src="([^"]+)"', response.text)
    assert bundle is not None and bundle.group(1).startswith("/")
    assert (await app_api.client.get(bundle.group(1))).status_code == 200


async def test_no_cors_headers_when_no_origin_is_configured(app_api: Api) -> None:
    preflight = await app_api.client.options("/v1/me", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    simple = await app_api.client.get("/health", headers={"Origin": ORIGIN})
    for response in (preflight, simple):
        assert not [name for name in response.headers
                    if name.lower().startswith("access-control-")]


async def test_cors_answers_allowed_origins_and_refuses_others(cors_api: Api) -> None:
    allowed = await cors_api.client.options("/v1/me", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = await cors_api.client.options("/v1/me", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await cors_api.client.get("/v1/me", headers={**cors_api.as_("alice"),
                                                          "Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    for name in ("x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
                 "retry-after", "etag"):
        assert name in exposed
    assert simple.headers["x-request-id"]


async def test_the_access_line_has_the_id_route_template_and_user(
        app_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = await app_api.client.get("/v1/personas/nobody", headers={
            **app_api.as_("alice"), "X-Request-ID": "req-logged"})
    assert response.status_code == 404
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 1
    line = lines[0]
    alice = await app_api.runtime.users.require_user("alice")
    assert (line.request_id, line.route, line.status, line.method, line.user_id) == (  # type: ignore[attr-defined]
        "req-logged", "/v1/personas/{persona_id}", 404, "GET", alice.id)
    assert line.duration_ms >= 0  # type: ignore[attr-defined]


async def test_an_unexpected_failure_is_a_500_with_the_id_logged_once(
        sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bug answers 500 with the error body, the request id and the usual headers, and
    its traceback is logged once, not again by the server's outermost handler."""
    from personae.api.app import create_app

    app = create_app(Settings(data_dir=tmp_path, database_url=sqlite_url))

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://personae") as client:
        with caplog.at_level(logging.ERROR):
            response = await client.get("/v1/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "a bug" not in response.text
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert [r.getMessage() for r in caplog.records].count("unhandled error") == 1
