"""The admin pages: only admins see them, they show what the admin API answers, and a
new key's secret is in the API's answer only, never in a page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import pytest

from personae.config import Settings
from personae.conversations.observe import TurnReport
from tests.support.api import Api, serve_app
from tests.support.web import HTML, WebUser, signed_in

ADMIN_PAGES = ("/admin", "/admin/users", "/admin/users/alice", "/admin/audit",
               "/admin/metrics", "/admin/health")
MARKUP = '<img src=x onerror="alert(1)">'


def _text(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def _new_key(admin: WebUser, user: str, label: str) -> dict[str, str]:
    response = await admin.api("POST", f"/v1/users/{user}/keys", json={"name": label})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_a_member_gets_the_403_page(alice: WebUser, path: str) -> None:
    response = await alice.page(path, expect=403)
    assert "Not allowed" in response.text and "only admins" in response.text
    assert 'data-user="bob"' not in response.text


@pytest.mark.parametrize("path", ["/admin", "/admin/users/bob", "/admin/audit?action=user."])
async def test_a_visitor_is_sent_to_sign_in(visitor: WebUser, path: str) -> None:
    response = await visitor.client.get(path, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in?next=%2Fadmin")


async def test_only_admins_see_the_admin_link(admin: WebUser, alice: WebUser) -> None:
    assert 'href="/admin"' in (await admin.page("/")).text
    assert 'href="/admin"' not in (await alice.page("/")).text


async def test_the_overview_counts_users_and_shows_health(web: Api, admin: WebUser) -> None:
    created = await admin.api("POST", "/v1/users", json={"name": "overview-carol"})
    assert created.status_code == 201, created.text
    page = (await admin.page("/admin")).text
    names = [u.name for u in await web.runtime.users.list_users()]
    assert "overview-carol" in names
    assert f'<span data-figure="users">{len(names)}</span>' in page
    assert re.search(r'data-health="(ok|degraded)"', page)
    assert 'data-figure="requests"' in page and 'aria-current="page">Overview' in page


async def test_the_users_page_shows_roles_and_status(web: Api, admin: WebUser) -> None:
    assert (await admin.api("PATCH", "/v1/users/bob", json={"disabled": True})).status_code == 200
    page = (await admin.page("/admin/users")).text
    bob = page[page.index('data-user="bob"'):]
    bob = bob[:bob.index("</tr>")]
    assert "disabled" in bob and 'data-action="enable"' in bob
    alice = page[page.index('data-user="alice"'):]
    alice = alice[:alice.index("</tr>")]
    assert "<td data-role>member</td>" in alice and 'data-action="disable"' in alice


async def test_a_user_created_through_the_api_appears(admin: WebUser) -> None:
    created = await admin.api("POST", "/v1/users", json={"name": "dana", "role": "admin"})
    assert created.status_code == 201
    page = (await admin.page("/admin/users")).text
    assert 'data-user="dana"' in page
    row = page[page.index('data-user="dana"'):]
    assert "<td data-role>admin</td>" in row[:400]


async def test_page_calls_without_the_csrf_token_are_refused(web: Api, admin: WebUser) -> None:
    response = await admin.api("POST", "/v1/users", json={"name": "mallory"},
                               headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403
    assert "mallory" not in [u.name for u in await web.runtime.users.list_users()]


async def test_the_last_admin_guard_answers_the_page_script(admin: WebUser) -> None:
    response = await admin.api("PATCH", "/v1/users/admin", json={"role": "member"})
    assert response.status_code == 409
    assert "last admin" in response.json()["error"]["message"]
    page = (await admin.page("/admin/users")).text
    assert 'data-users-error' in page  # where admin.js shows that message


async def test_a_new_key_is_in_the_answer_only(admin: WebUser) -> None:
    created = await _new_key(admin, "alice", "laptop-once")
    token = created["token"]
    assert token.startswith("pk_")
    keys_page = (await admin.page("/admin/users/alice")).text
    assert "laptop-once" in keys_page and created["prefix"] in keys_page
    for path in ADMIN_PAGES:
        assert token not in (await admin.page(path)).text, path
    listed = await admin.api("GET", "/v1/users/alice/keys")
    assert token not in listed.text


async def test_a_revoked_key_signs_its_browser_out(web: Api, admin: WebUser) -> None:
    created = await _new_key(admin, "alice", "revoke-me")
    browser = await signed_in(Api(web.client, {"alice": created["token"]}, web.runtime),
                              "alice")
    try:
        await browser.page("/", expect=200)
        assert (await admin.api("DELETE", f"/v1/keys/{created['id']}")).status_code == 204
        again = await browser.client.get("/chat", headers=HTML)
        assert again.status_code == 303 and again.headers["location"].startswith("/sign-in")
    finally:
        await browser.client.aclose()
    page = (await admin.page("/admin/users/alice")).text
    row = page[page.index(f'data-key="{created["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert "revoked" in row and "data-revoke" not in row


async def test_another_users_key_cannot_be_revoked_by_a_member(admin: WebUser,
                                                               bob: WebUser) -> None:
    created = await _new_key(admin, "alice", "not-bobs")
    assert (await bob.api("DELETE", f"/v1/keys/{created['id']}")).status_code == 404
    page = (await admin.page("/admin/users/alice")).text
    assert 'data-revoke="' + created["id"] + '"' in page


async def test_keys_of_an_unknown_user_is_the_404_page(admin: WebUser) -> None:
    response = await admin.page("/admin/users/nobody-here", expect=404)
    assert "Not found" in response.text and "nobody-here" in response.text


async def test_a_key_label_with_markup_is_text_everywhere(admin: WebUser) -> None:
    await _new_key(admin, "bob", MARKUP)
    for path in ("/admin/users/bob", "/admin/audit?action=key.create"):
        page = (await admin.page(path)).text
        assert MARKUP not in page and "<img" not in page, path
        assert MARKUP in _text(page), path


async def test_audit_filters_by_action_and_actor(admin: WebUser, alice: WebUser) -> None:
    await admin.api("POST", "/v1/users", json={"name": "erin"})
    await admin.api("PATCH", "/v1/users/erin", json={"role": "admin"})
    made = await alice.api("POST", "/v1/personas", json={"definition": {
        "id": "audited", "name": "Audited", "description": "d", "greetings": ["Hi"]}})
    assert made.status_code == 201, made.text
    page = (await admin.page("/admin/audit?action=user.&actor=admin")).text
    actions = set(re.findall(r"<td><code>([a-z.]+)</code></td>", page))
    assert actions == {"user.create", "user.role"}
    assert 'value="user."' in page and 'value="admin"' in page  # the form keeps them
    mine = (await admin.page("/admin/audit?actor=alice")).text
    assert set(re.findall(r"<td><code>([a-z.]+)</code></td>", mine)) == {"persona.create"}
    assert "alice/audited" in mine


async def test_audit_time_filters(admin: WebUser) -> None:
    await admin.api("POST", "/v1/users", json={"name": "frank"})
    recent = (await admin.page("/admin/audit?since=1h&target_type=user")).text
    assert "user.create" in recent
    old = (await admin.page("/admin/audit?until=2000-01-01")).text
    assert 'data-count="0"' in old and "No entries match." in old


async def test_a_bad_audit_filter_is_shown_next_to_its_field(admin: WebUser) -> None:
    response = await admin.page("/admin/audit?since=yesterday", expect=400)
    page = response.text
    assert 'id="audit-since-error"' in page and "since: expected a date" in page
    field = page[page.index('id="audit-since"'):]
    assert 'aria-invalid="true"' in field[:field.index(">")]
    assert 'value="yesterday"' in page


async def test_audit_pages_with_the_cursor(admin: WebUser) -> None:
    for name in ("gwen", "hank", "ivy"):
        await admin.api("POST", "/v1/users", json={"name": name})
    first = (await admin.page("/admin/audit?action=user.create&limit=2")).text
    older = re.search(r'href="(/admin/audit\?[^"]+cursor=\d+)" rel="next"', first)
    assert older, "no link to the older page"
    second = (await admin.page(unescape(older.group(1)))).text
    ids = [re.findall(r'data-entry="(\d+)"', page) for page in (first, second)]
    assert len(ids[0]) == 2 and ids[1] and not set(ids[0]) & set(ids[1])
    assert max(map(int, ids[1])) < min(map(int, ids[0]))
    assert "Newest entries" in second and "user.create" in second


def _turn(persona: str, status: str, error: str | None = None) -> TurnReport:
    return TurnReport("s1", persona, 1, "model", "m", status, 120.0, 300.0, 10, 5, error)


async def test_the_metrics_page_summarises_the_counters(web: Api, admin: WebUser) -> None:
    metrics = web.runtime.metrics
    metrics.turn_finished(_turn("tina-kulkarni", "complete"))
    metrics.turn_finished(_turn("tina-kulkarni", "failed", "provider_error"))
    metrics.rate_limited("chat", "requests")
    page = (await admin.page("/admin/metrics")).text
    assert '<dd data-figure="turns">2</dd>' in page
    assert '<dd data-figure="failed">1</dd>' in page
    assert '<dd data-figure="rate-limited">1</dd>' in page
    row = page[page.index('data-persona="tina-kulkarni"'):]
    assert "<td>2</td><td>0</td><td>1</td><td>1</td>" in row and "120.0 ms" in row
    summary = await admin.api("GET", "/v1/metrics/summary")
    assert summary.json()["turns"] == {"complete": 1, "interrupted": 0, "failed": 1}


async def test_the_health_page_shows_the_detailed_report(web: Api, admin: WebUser) -> None:
    report = (await web.client.get("/health/detailed", headers=web.as_("admin"))).json()
    page = (await admin.page("/admin/health")).text
    assert f'data-health="{report["status"]}"' in page
    database = page[page.index('data-check="Database"'):]
    assert 'data-state="ok"' in database[:300]
    assert 'data-check="Rate-limit storage (Redis)"' in page and "not configured" in page
    for name in report["disk"]:
        assert f'data-check="Disk {name}"' in page


@pytest.fixture
async def quiet(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with metrics switched off."""
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url,
                        anonymous_loopback=False, metrics_enabled=False)
    async for harness in serve_app(settings):
        yield harness


async def test_metrics_switched_off_is_a_note_not_an_error(quiet: Api) -> None:
    admin = await signed_in(quiet, "admin")
    try:
        for path in ("/admin/metrics", "/admin"):
            page = (await admin.page(path)).text
            assert "Metrics are switched off here" in page
            assert "PERSONAE_METRICS_ENABLED=true" in page
    finally:
        await admin.client.aclose()
    response = await quiet.client.get("/v1/metrics/summary", headers=quiet.as_("admin"))
    assert response.status_code == 404


async def test_pages_are_never_cached(admin: WebUser) -> None:
    response = await admin.page("/admin/users/alice")
    assert response.headers["cache-control"] == "no-store"
