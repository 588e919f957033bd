"""Signing in and out of the dashboard: one browser's sign-out leaves the others
signed in, "end all sign-ins" ends them all, and the sign-in form stops answering an
address that keeps trying wrong keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from personae.auth.browser import COOKIE_NAME
from personae.auth.principal import Role
from personae.auth.store import ended_browser_sessions
from personae.config import Settings
from personae.errors import AuthenticationRequired
from personae.runtime import Runtime
from tests.support.api import Api
from tests.support.web import HTML, WebUser, serve_dashboard, signed_in, web_client

WRONG_KEY = "pk_" + "0" * 43


async def _sign_out(user: WebUser, **extra: str) -> httpx.Response:
    await user.page("/")
    return await user.client.post("/sign-out", data={"csrf_token": user.csrf, **extra},
                                  headers=HTML)


async def _is_signed_in(user: WebUser) -> bool:
    status = (await user.client.get("/v1/me")).status_code
    assert status in (200, 401)
    return status == 200


async def test_signing_out_leaves_the_other_browsers_of_the_key_signed_in(web: Api) -> None:
    phone, laptop = await signed_in(web, "alice"), await signed_in(web, "alice")
    copied = phone.client.cookies.get(COOKIE_NAME) or ""
    out = await _sign_out(phone)
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert not await _is_signed_in(phone)
    assert await _is_signed_in(laptop)
    assert (await laptop.page("/")).status_code == 200
    thief = WebUser(web_client(web))  # a copy of the signed-out cookie is refused too
    thief.client.cookies.set(COOKIE_NAME, copied)
    assert not await _is_signed_in(thief)


async def test_ending_all_sign_ins_signs_out_every_browser_of_the_key(web: Api) -> None:
    phone, laptop = await signed_in(web, "alice"), await signed_in(web, "alice")
    bob = await signed_in(web, "bob")
    page = await laptop.page("/")
    assert 'name="everywhere"' in page.text and "End all sign-ins" in page.text
    out = await _sign_out(laptop, everywhere="1")
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert not await _is_signed_in(phone) and not await _is_signed_in(laptop)
    assert await _is_signed_in(bob)  # another key's browsers are not touched
    again = await signed_in(web, "alice")
    assert await _is_signed_in(again)


async def test_a_signed_out_session_is_refused_by_another_process(database_url: str,
                                                                  tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    first = await Runtime.open(settings)
    second = await Runtime.open(settings)
    try:
        await first.users.create_user("dora", Role.member)
        _, key = await first.users.create_key("dora")
        _, phone = first.browser_sessions.issue(key.id)
        _, laptop = first.browser_sessions.issue(key.id)
        for session in (phone, laptop):  # cached by the second process from here on
            assert (await second.auth.authenticate_browser(
                key.id, session.issued_at, session.session_id)).name == "dora"
        await first.auth.end_browser_session(key.id, phone.session_id,
                                             first.browser_sessions.expires_at(phone))
        with pytest.raises(AuthenticationRequired, match="signed out"):
            await first.auth.authenticate_browser(key.id, phone.issued_at, phone.session_id)
        deadline = time.monotonic() + 3
        while True:
            try:
                await second.auth.authenticate_browser(key.id, phone.issued_at,
                                                       phone.session_id)
            except AuthenticationRequired:
                break
            assert time.monotonic() < deadline, "the other process still accepts it"
            await asyncio.sleep(0.05)
        assert (await second.auth.authenticate_browser(
            key.id, laptop.issued_at, laptop.session_id)).name == "dora"
    finally:
        await second.close()
        await first.close()


async def test_ended_sessions_are_pruned_once_their_cookies_have_expired(
        database_url: str, tmp_path: Path) -> None:
    runtime = await Runtime.open(Settings(data_dir=tmp_path, database_url=database_url),
                                 watch=False)
    try:
        await runtime.users.create_user("dora", Role.member)
        _, key = await runtime.users.create_key("dora")
        await runtime.auth.end_browser_session(key.id, "s" * 22, time.time() - 1)
        await runtime.auth.end_browser_session(key.id, "t" * 22, time.time() + 600)
        await runtime.auth.end_browser_session(key.id, "t" * 22, time.time() + 600)  # again
        async with runtime.engine.connect() as conn:
            kept = (await conn.execute(sa.select(ended_browser_sessions.c.session_id))).all()
        assert [row[0] for row in kept] == ["t" * 22]
        with pytest.raises(AuthenticationRequired):
            await runtime.auth.authenticate_browser(key.id, time.time(), "t" * 22)
    finally:
        await runtime.close()


async def test_revoking_the_key_still_ends_every_sign_in(web: Api) -> None:
    phone, laptop = await signed_in(web, "alice"), await signed_in(web, "alice")
    alice = await web.runtime.users.store.get_user("alice")
    assert alice is not None
    key = (await web.runtime.users.list_keys(alice.id))[0]
    await web.runtime.users.revoke_key(key.id)
    assert not await _is_signed_in(phone) and not await _is_signed_in(laptop)


# -- wrong keys on the sign-in form ------------------------------------------------

def _limited(sqlite_url: str, tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path, database_url=sqlite_url, anonymous_loopback=False,
                    auth_failures_limit="3/minute", **changes)


@pytest.fixture
async def limited(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in serve_dashboard(_limited(sqlite_url, tmp_path)):
        yield harness


def _browser(api: Api, host: str) -> WebUser:
    app = api.client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, client=(host, 5000))
    return WebUser(httpx.AsyncClient(transport=transport, base_url="http://personae"))


async def test_the_form_stops_checking_keys_from_an_address_after_wrong_ones(
        limited: Api) -> None:
    guesser, neighbour = _browser(limited, "203.0.113.7"), _browser(limited, "203.0.113.8")
    assert [(await guesser.sign_in(WRONG_KEY)).status_code for _ in range(3)] == [401] * 3
    refused = await guesser.sign_in(limited.keys["alice"])  # not even checked now
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert "Too many failed sign-ins" in refused.text and f"{wait} seconds" in refused.text
    assert 'role="alert"' in refused.text and 'name="api_key"' in refused.text
    assert (await guesser.client.get("/", headers=HTML)).status_code == 303
    assert (await neighbour.sign_in(limited.keys["alice"])).status_code == 303


async def test_good_sign_ins_are_not_counted(limited: Api) -> None:
    user = _browser(limited, "203.0.113.9")
    for _ in range(5):
        assert (await user.sign_in(limited.keys["bob"])).status_code == 303
    assert [(await user.sign_in(WRONG_KEY)).status_code for _ in range(4)] == \
        [401, 401, 401, 429]


async def test_wrong_keys_on_the_api_count_against_the_form_too(limited: Api) -> None:
    user = _browser(limited, "203.0.113.10")
    for _ in range(3):
        answer = await user.client.get("/v1/me", headers={"X-API-Key": WRONG_KEY})
        assert answer.status_code == 401
    assert (await user.sign_in(limited.keys["bob"])).status_code == 429


async def test_with_limits_switched_off_the_form_counts_nothing(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    settings = _limited(sqlite_url, tmp_path, rate_limits_enabled=False)
    async for api in serve_dashboard(settings):
        user = _browser(api, "203.0.113.11")
        assert [(await user.sign_in(WRONG_KEY)).status_code for _ in range(5)] == [401] * 5
        assert (await user.sign_in(api.keys["bob"])).status_code == 303
