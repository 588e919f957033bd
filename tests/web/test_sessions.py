"""Signing in to the dashboard, and what its session cookie may and may not do."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from personae.api.app import create_app
from personae.auth.browser import COOKIE_NAME
from personae.auth.principal import Role
from personae.config import Settings
from personae.errors import AuthenticationRequired
from personae.runtime import Runtime, browser_sessions_for
from tests.support.api import Api
from tests.support.web import HTML, WebUser, csrf_of, web_client


def _cookie_header(response: httpx.Response) -> str:
    headers = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    assert headers, "no cookie was set"
    return headers[-1]


async def test_a_visitor_is_sent_to_sign_in_and_back(web: Api, visitor: WebUser) -> None:
    response = await visitor.client.get("/?q=x&tag=a", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2F%3Fq%3Dx%26tag%3Da"
    signed = await visitor.sign_in(web.keys["alice"], "/?q=x&tag=a")
    assert signed.status_code == 303 and signed.headers["location"] == "/?q=x&tag=a"


async def test_the_session_cookie_is_http_only_and_same_site(visitor: WebUser) -> None:
    response = await visitor.page("/sign-in")
    cookie = _cookie_header(response).lower()
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here; https pages get Secure


async def test_a_signed_in_page_names_the_user(alice: WebUser) -> None:
    page = await alice.page("/")
    assert ">alice</span>" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(("key", "status", "says"), [
    ("pk_" + "0" * 40, 401, "not valid"),
    ("hunter2", 400, "not an API key"),
])
async def test_a_wrong_key_is_refused_on_the_form(visitor: WebUser, key: str, status: int,
                                                  says: str) -> None:
    response = await visitor.sign_in(key)
    assert response.status_code == status
    assert says in response.text and 'aria-invalid="true"' in response.text
    assert COOKIE_NAME not in response.headers.get("set-cookie", "") or \
        (await visitor.client.get("/", headers=HTML)).status_code == 303


async def test_the_sign_in_form_needs_its_csrf_token(web: Api, visitor: WebUser) -> None:
    await visitor.page("/sign-in")
    response = await visitor.client.post("/sign-in", data={
        "api_key": web.keys["alice"], "csrf_token": "forged"}, headers=HTML)
    assert response.status_code == 403 and "expired" in response.text
    assert (await visitor.client.get("/", headers=HTML)).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/",
                                    "/\\evil.example", "javascript:alert(1)"])
async def test_sign_in_never_redirects_off_site(web: Api, visitor: WebUser,
                                                target: str) -> None:
    response = await visitor.sign_in(web.keys["alice"], target)
    assert response.status_code == 303 and response.headers["location"] == "/"


async def test_the_cookie_reads_the_api_and_changes_need_the_csrf_token(
        alice: WebUser) -> None:
    me = await alice.api("GET", "/v1/me")
    assert me.status_code == 200 and me.json()["name"] == "alice"
    body = {"persona_id": "tina-kulkarni"}
    refused = await alice.client.post("/v1/sessions", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    wrong = await alice.client.post("/v1/sessions", json=body,
                                    headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    made = await alice.api("POST", "/v1/sessions", json=body)
    assert made.status_code == 201, made.text


async def test_an_api_key_needs_no_csrf_token_even_beside_a_cookie(web: Api,
                                                                   alice: WebUser) -> None:
    made = await alice.client.post("/v1/sessions", json={"persona_id": "tina-kulkarni"},
                                   headers=web.as_("bob"))
    assert made.status_code == 201  # the key decides: bob's session, no cookie involved
    assert (await web.client.get(f"/v1/sessions/{made.json()['session']['id']}",
                                 headers=web.as_("bob"))).status_code == 200


async def test_a_forged_cookie_is_no_session(web: Api, visitor: WebUser) -> None:
    visitor.client.cookies.set(COOKIE_NAME, "eyJrIjoiYWRtaW4ifQ.forged.signature")
    assert (await visitor.client.get("/v1/me")).status_code == 401
    assert (await visitor.client.get("/", headers=HTML)).status_code == 303


async def test_a_cookie_from_another_server_is_no_session(web: Api, visitor: WebUser,
                                                          tmp_path: Path) -> None:
    other = Settings(data_dir=tmp_path / "other", anonymous_loopback=False)
    key = (await web.runtime.users.list_keys())[0]
    forged, _ = browser_sessions_for(other).issue(key.id)
    visitor.client.cookies.set(COOKIE_NAME, forged)
    assert (await visitor.client.get("/v1/me")).status_code == 401


async def test_revoking_the_key_ends_its_sign_ins(web: Api, alice: WebUser) -> None:
    alice_user = await web.runtime.users.store.get_user("alice")
    assert alice_user is not None
    key = next(k for k in await web.runtime.users.list_keys(alice_user.id))
    await web.runtime.users.revoke_key(key.id)
    response = await alice.client.get("/", headers=HTML)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")
    assert (await alice.client.get("/v1/me")).status_code == 401


async def test_disabling_the_user_ends_their_sign_ins(web: Api, bob: WebUser) -> None:
    admin = await web.runtime.auth.authenticate(web.keys["admin"])
    await web.runtime.users.set_disabled("bob", True, actor=admin)
    assert (await bob.client.get("/", headers=HTML)).status_code == 303
    assert (await bob.client.get("/v1/me")).status_code == 401


async def test_signing_out_needs_the_token_and_ends_the_session(alice: WebUser) -> None:
    refused = await alice.client.post("/sign-out", data={"csrf_token": "x"}, headers=HTML)
    assert refused.status_code == 403
    assert (await alice.client.get("/", headers=HTML)).status_code == 200
    page = await alice.page("/")
    out = await alice.client.post("/sign-out", data={"csrf_token": csrf_of(page.text)},
                                  headers=HTML)
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert (await alice.client.get("/", headers=HTML)).status_code == 303


async def test_two_browsers_are_two_users(web: Api, alice: WebUser, bob: WebUser) -> None:
    assert (await alice.api("GET", "/v1/me")).json()["name"] == "alice"
    assert (await bob.api("GET", "/v1/me")).json()["name"] == "bob"
    assert alice.csrf != bob.csrf
    stolen = WebUser(web_client(web), csrf=alice.csrf)  # the token alone is worth nothing
    made = await stolen.api("POST", "/v1/sessions", json={"persona_id": "tina-kulkarni"})
    assert made.status_code == 401


async def test_error_pages_for_browsers_json_for_clients(alice: WebUser) -> None:
    page = await alice.client.get("/no-such-page", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text
    api = await alice.client.get("/no-such-page")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    under_v1 = await alice.client.get("/v1/no-such-thing", headers=HTML)
    assert under_v1.headers["content-type"].startswith("application/json")


async def test_static_files_are_served(visitor: WebUser) -> None:
    script = await visitor.client.get("/static/app.js")
    assert script.status_code == 200 and "Personae" in script.text
    assert script.headers["content-type"].startswith(("text/javascript",
                                                      "application/javascript"))
    assert (await visitor.client.get("/static/../config.py")).status_code == 404


async def test_the_dashboard_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, dashboard_enabled=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            page = await client.get("/", headers=HTML)
            assert page.status_code == 404 and page.json()["error"]["code"] == "not_found"
            assert (await client.get("/static/app.js")).status_code == 404


def _keyless_app(sqlite_url: str, tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, host="127.0.0.1")
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000",
                      client=("127.0.0.1", 5000))


def test_keyless_loopback_pages_need_no_sign_in_but_forms_need_the_token(
        sqlite_url: str, tmp_path: Path) -> None:
    with _keyless_app(sqlite_url, tmp_path) as client:
        client.portal.call(client.app.state.runtime.load_samples)
        page = client.get("/", headers=HTML)
        assert page.status_code == 200 and ">local</span>" in page.text
        assert "Sign in with a key" in page.text
        body = {"persona_id": "tina-kulkarni"}
        assert client.post("/v1/sessions", json=body).status_code == 403  # cookie, no token
        made = client.post("/v1/sessions", json=body,
                           headers={"X-CSRF-Token": csrf_of(page.text)})
        assert made.status_code == 201, made.text
        client.cookies.clear()  # a script or curl without the cookie: keyless as before
        assert client.post("/v1/sessions", json=body).status_code == 201


def test_a_page_on_another_origin_cannot_open_a_socket(sqlite_url: str,
                                                       tmp_path: Path) -> None:
    with _keyless_app(sqlite_url, tmp_path) as client:
        client.portal.call(client.app.state.runtime.load_samples)
        page = client.get("/", headers=HTML)
        made = client.post("/v1/sessions", json={"persona_id": "tina-kulkarni"},
                           headers={"X-CSRF-Token": csrf_of(page.text)}).json()
        path = f"/v1/sessions/{made['session']['id']}/ws"
        with client.websocket_connect(path, headers={"origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "ready"
        with client.websocket_connect(path, headers={"origin": "http://evil.example"}) as ws:
            closed = ws.receive()
        assert closed["type"] == "websocket.close" and closed["code"] == 4403
        assert re.search("evil.example", closed.get("reason", ""))


async def test_a_signed_in_member_is_themself_on_a_keyless_server_too(
        sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, host="127.0.0.1")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        users = app.state.runtime.users
        await users.create_user("carol")
        key, _ = await users.create_key("carol")
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            user = WebUser(client)
            assert (await user.sign_in(key)).status_code == 303
            assert (await user.api("GET", "/v1/me")).json()["name"] == "carol"
            assert (await signed_in_name(user)) == "carol"


async def signed_in_name(user: WebUser) -> str:
    page = await user.page("/")
    found = re.search(r'class="who"[^>]*>([^<]+)<', page.text)
    assert found
    return found.group(1)


def test_another_site_cannot_make_a_keyless_change(sqlite_url: str, tmp_path: Path) -> None:
    """No cookie is sent on a cross-site POST, so keyless requests check the Origin."""
    with _keyless_app(sqlite_url, tmp_path) as client:
        client.portal.call(client.app.state.runtime.load_samples)
        body = {"persona_id": "tina-kulkarni"}
        foreign = client.post("/v1/sessions", json=body,
                              headers={"origin": "http://localhost:8139"})
        assert foreign.status_code == 403 and "localhost:8139" in foreign.text
        assert client.post("/v1/personas/tina-kulkarni/archive",
                           headers={"origin": "http://evil.example"}).status_code == 403
        own = client.post("/v1/sessions", json=body,
                          headers={"origin": "http://127.0.0.1:8000"})
        assert own.status_code == 201  # the dashboard's own origin
        assert client.get("/v1/personas/tina-kulkarni",
                          headers={"origin": "http://evil.example"}).status_code == 200


def test_a_placeholder_key_does_not_skip_the_socket_origin_check(
        sqlite_url: str, tmp_path: Path) -> None:
    with _keyless_app(sqlite_url, tmp_path) as client:
        client.portal.call(client.app.state.runtime.load_samples)
        made = client.post("/v1/sessions", json={"persona_id": "tina-kulkarni"}).json()
        path = f"/v1/sessions/{made['session']['id']}/ws?api_key=x"
        with client.websocket_connect(path, headers={"origin": "http://evil.example"}) as ws:
            closed = ws.receive()
        assert closed["type"] == "websocket.close" and closed["code"] == 4403
        with client.websocket_connect(path) as ws:  # a program: no Origin
            assert ws.receive_json()["type"] == "ready"


@pytest.mark.parametrize(("host", "status"), [
    ("attacker.example:8000", 403), ("127.0.0.1.nip.example", 403),
    ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200),
    ("app.localhost", 200)])
def test_a_keyless_server_answers_only_for_this_machine(sqlite_url: str, tmp_path: Path,
                                                         host: str, status: int) -> None:
    """DNS rebinding: a page on attacker.example made to resolve to 127.0.0.1."""
    with _keyless_app(sqlite_url, tmp_path) as client:
        answer = client.get("/v1/me", headers={"host": host})
        assert answer.status_code == status, answer.text


async def test_signing_out_ends_copies_of_the_cookie_too(web: Api, alice: WebUser) -> None:
    copied = alice.client.cookies.get(COOKIE_NAME)
    page = await alice.page("/")
    out = await alice.client.post("/sign-out", data={"csrf_token": csrf_of(page.text)},
                                  headers=HTML)
    assert out.status_code == 303
    thief = WebUser(web_client(web))
    thief.client.cookies.set(COOKIE_NAME, copied or "")
    assert (await thief.client.get("/v1/me")).status_code == 401
    assert (await thief.client.get("/", headers=HTML)).status_code == 303
    again = WebUser(web_client(web))  # and a new sign-in with the same key works
    assert (await again.sign_in(web.keys["alice"])).status_code == 303
    assert (await again.api("GET", "/v1/me")).json()["name"] == "alice"


async def test_ended_sessions_are_kept_in_the_database(database_url: str,
                                                        tmp_path: Path) -> None:
    runtime = await Runtime.open(Settings(data_dir=tmp_path, database_url=database_url))
    try:
        await runtime.users.create_user("dora", Role.member)
        _, key = await runtime.users.create_key("dora")
        _, before = runtime.browser_sessions.issue(key.id)
        assert (await runtime.auth.authenticate_browser(key.id, before.issued_at)).name == "dora"
        await runtime.auth.end_browser_sessions(key.id)
        with pytest.raises(AuthenticationRequired, match="signed out"):
            await runtime.auth.authenticate_browser(key.id, before.issued_at)
        _, after = runtime.browser_sessions.issue(key.id)
        assert (await runtime.auth.authenticate_browser(key.id, after.issued_at)).name == "dora"
    finally:
        await runtime.close()
