"""Every action the audit log promises, made over HTTP, is in ``GET /v1/audit`` with who
did it, from where (client address and request id) and a summary of what changed."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import cards as made
from tests.support.api import Api

PERSONA = {"id": "tutor", "name": "Tutor", "description": "Helps.", "greetings": ["Hi!"]}


async def _call(api: Api, method: str, url: str, who: str = "admin", status: int = 200,
                **kwargs: Any) -> httpx.Response:
    headers = {**api.as_(who), "X-Request-ID": f"req-{method.lower()}-{url.count('/')}",
               **kwargs.pop("headers", {})}
    response = await api.client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    return response


async def _entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    found = await api.client.get("/v1/audit", params=params, headers=api.as_("admin"))
    assert found.status_code == 200, found.text
    data: list[dict[str, Any]] = found.json()["data"]
    return data


async def _persona_history(api: Api) -> None:
    """Every persona action, as alice on her own persona (the admin deletes it)."""
    pid = "alice/tutor"
    await _call(api, "POST", "/v1/personas", "alice", 201, json={"definition": PERSONA})
    await _call(api, "PATCH", f"/v1/personas/{pid}", "alice", json={
        "definition": {"description": "Teaches."}, "base_version": 1})
    await _call(api, "PATCH", f"/v1/personas/{pid}", "alice", json={
        "visibility": "public", "base_version": 2})
    await _call(api, "PUT", f"/v1/personas/{pid}/avatar", "alice", content=made.image_png(),
                headers={"Content-Type": "image/png", "If-Match": '"3"'})
    await _call(api, "POST", f"/v1/personas/{pid}/rollback", "alice",
                json={"version": 1, "base_version": 4})
    await _call(api, "POST", f"/v1/personas/{pid}/archive", "alice", json={"base_version": 5})
    await _call(api, "POST", f"/v1/personas/{pid}/restore", "alice", json={"base_version": 6})
    await _call(api, "DELETE", f"/v1/personas/{pid}?hard=true", "admin", 204)


async def test_every_persona_action_is_recorded(api: Api) -> None:
    await _persona_history(api)
    entries = await _entries(api, target_id="alice/tutor")
    assert [e["action"] for e in reversed(entries)] == [
        "persona.create", "persona.update", "persona.visibility", "persona.update",
        "persona.rollback", "persona.archive", "persona.restore", "persona.delete"]
    create, update, visibility = reversed(entries[-3:])
    assert create["actor_name"] == "alice" and create["summary"]["version"] == 1
    assert update["summary"] == {"changed_fields": ["description"], "from_version": 1,
                                 "to_version": 2}
    assert visibility["summary"] == {"from": "private", "to": "public", "from_version": 2,
                                     "to_version": 3}
    assert entries[0]["actor_name"] == "admin"
    for entry in entries:
        assert entry["target_type"] == "persona"
        assert entry["client"] == "127.0.0.1"
        assert entry["request_id"].startswith("req-")
    assert "Teaches" not in str(entries)  # names of fields, never their contents


async def test_every_account_action_is_recorded(api: Api) -> None:
    await _call(api, "POST", "/v1/users", json={"name": "carol"}, status=201)
    await _call(api, "PATCH", "/v1/users/carol", json={"role": "admin"})
    await _call(api, "PATCH", "/v1/users/carol", json={"disabled": True})
    await _call(api, "PATCH", "/v1/users/carol", json={"disabled": False})
    created = await _call(api, "POST", "/v1/users/carol/keys", json={"name": "ci"},
                          status=201)
    key_id, token = created.json()["id"], created.json()["token"]
    await _call(api, "PUT", f"/v1/keys/{key_id}/limits", json={"chat": "5/minute"})
    await _call(api, "DELETE", f"/v1/keys/{key_id}", status=204)
    entries = list(reversed(await _entries(api, actor="admin")))
    assert [e["action"] for e in entries] == [
        "user.create", "user.role", "user.disable", "user.enable", "key.create",
        "key.limits", "key.revoke"]
    assert entries[1]["summary"] == {"name": "carol", "from": "member", "to": "admin"}
    assert entries[5]["summary"]["to"] == {"chat": "5/minute"}
    assert entries[5]["summary"]["from"] == {}
    assert {e["target_id"] for e in entries[4:]} == {key_id}
    assert token not in str(entries) and token[:10] not in str(entries)
    assert all(e["request_id"] and e["client"] == "127.0.0.1" for e in entries)


async def test_the_request_id_sent_is_the_one_recorded(api: Api) -> None:
    await api.client.post("/v1/users", json={"name": "dave"},
                          headers={**api.as_("admin"), "X-Request-ID": "trace-7f3a"})
    (entry,) = await _entries(api, action="user.create", actor="admin")
    assert entry["request_id"] == "trace-7f3a"


async def test_filters_and_paging(api: Api) -> None:
    await _persona_history(api)
    await _call(api, "POST", "/v1/users", json={"name": "carol"}, status=201)
    assert {e["action"] for e in await _entries(api, action="user.")} == {"user.create"}
    assert len(await _entries(api, actor="alice")) == 7
    assert await _entries(api, since="1h", target_type="user") != []
    assert await _entries(api, until="2000-01-01") == []
    page = (await api.client.get("/v1/audit?limit=3", headers=api.as_("admin"))).json()
    # 8 persona entries, carol, and the harness's 3 users and their keys
    assert len(page["data"]) == 3 and page["count"] == 15
    rest = (await api.client.get(f"/v1/audit?limit=20&cursor={page['next_cursor']}",
                                 headers=api.as_("admin"))).json()
    assert len(rest["data"]) == 12 and rest["next_cursor"] is None
    assert [e["id"] for e in page["data"] + rest["data"]] == sorted(
        (e["id"] for e in page["data"] + rest["data"]), reverse=True)


async def test_bad_filters_are_400(api: Api) -> None:
    for query in ("limit=0", "limit=501", "action=persona.eat", "target_type=session",
                  "since=yesterday", "since=2026-02-01&until=2026-01-01"):
        response = await api.client.get(f"/v1/audit?{query}", headers=api.as_("admin"))
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "invalid_input"


async def test_members_cannot_read_it(api: Api) -> None:
    await _call(api, "POST", "/v1/personas", "alice", 201, json={"definition": PERSONA})
    for query in ("", "?actor=alice", "?since=yesterday"):
        response = await api.client.get(f"/v1/audit{query}", headers=api.as_("alice"))
        assert response.status_code == 403, query
    assert (await api.client.get("/v1/audit")).status_code == 401
