"""Accounts over HTTP: admins manage users and keys; a member sees only their own, and
never learns whether anyone else exists; the last admin cannot be demoted."""

from __future__ import annotations

import httpx

from tests.support.api import Api


async def _ask(api: Api, method: str, url: str, who: str = "admin",
               **kwargs: object) -> httpx.Response:
    return await api.client.request(method, url, headers=api.as_(who), **kwargs)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _key_ids(api: Api, name: str) -> list[str]:
    listed = await _ask(api, "GET", f"/v1/users/{name}/keys")
    return [key["id"] for key in listed.json()["data"]]


async def test_admins_create_list_and_read_users(api: Api) -> None:
    created = await _ask(api, "POST", "/v1/users", json={"name": "carol", "role": "admin"})
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "admin" and created.json()["disabled"] is False
    listed = (await _ask(api, "GET", "/v1/users")).json()
    assert listed["count"] == 4
    assert [u["name"] for u in listed["data"]] == ["admin", "alice", "bob", "carol"]
    one = await _ask(api, "GET", f"/v1/users/{created.json()['id']}")
    assert one.json()["name"] == "carol"
    assert (await _ask(api, "POST", "/v1/users", json={"name": "carol"})).status_code == 409
    assert (await _ask(api, "POST", "/v1/users", json={"name": "Carol S"})).status_code == 400
    assert (await _ask(api, "POST", "/v1/users", json={"name": "x", "extra": 1})
            ).status_code == 422
    assert (await _ask(api, "GET", "/v1/users/nobody")).status_code == 404


async def test_a_key_secret_is_shown_once_and_works(api: Api) -> None:
    created = await _ask(api, "POST", "/v1/users/bob/keys", json={"name": "laptop"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["token"].startswith(key["prefix"]) and key["limits"] is None
    me = await api.client.get("/v1/me", headers=_bearer(key["token"]))
    assert me.json()["name"] == "bob"
    listed = (await _ask(api, "GET", "/v1/users/bob/keys")).json()
    assert listed["count"] == 2 and key["token"] not in str(listed)
    default = await _ask(api, "POST", "/v1/users/bob/keys")
    assert default.status_code == 201 and default.json()["name"] == "default"


async def test_members_see_only_themselves(api: Api) -> None:
    assert (await _ask(api, "GET", "/v1/users/alice", "alice")).json()["name"] == "alice"
    own = await _ask(api, "GET", "/v1/users/alice/keys", "alice")
    assert own.status_code == 200 and own.json()["count"] == 1
    refusals = [("GET", "/v1/users", None), ("POST", "/v1/users", {"name": "x"}),
                ("GET", "/v1/users/bob", None), ("GET", "/v1/users/bob/keys", None),
                ("PATCH", "/v1/users/alice", {"role": "admin"}),
                ("POST", "/v1/users/alice/keys", {"name": "x"})]
    for method, url, body in refusals:
        response = await _ask(api, method, url, "alice", json=body)
        assert response.status_code == 403, (method, url, response.text)
    # someone who exists and someone who does not get the same answer
    bob = await _ask(api, "GET", "/v1/users/bob", "alice")
    nobody = await _ask(api, "GET", "/v1/users/nobody", "alice")
    assert (bob.status_code, bob.json()) == (nobody.status_code, nobody.json())


async def test_a_disabled_user_is_refused_at_once_and_back_when_enabled(api: Api) -> None:
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 200
    disabled = await _ask(api, "PATCH", "/v1/users/bob", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 401
    await _ask(api, "PATCH", "/v1/users/bob", json={"disabled": False})
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 200


async def test_a_role_change_applies_at_once(api: Api) -> None:
    assert (await _ask(api, "GET", "/v1/users", "alice")).status_code == 403
    promoted = await _ask(api, "PATCH", "/v1/users/alice", json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert (await _ask(api, "GET", "/v1/users", "alice")).status_code == 200
    assert (await _ask(api, "GET", "/v1/me", "alice")).json()["role"] == "admin"


async def test_the_last_admin_stays_an_admin(api: Api) -> None:
    for change in ({"role": "member"}, {"disabled": True}):
        refused = await _ask(api, "PATCH", "/v1/users/admin", json=change)
        assert refused.status_code == 409, refused.text
        assert "last admin" in refused.json()["error"]["message"]
    await api.runtime.auth.local_admin()  # the keyless admin does not count
    assert (await _ask(api, "PATCH", "/v1/users/admin", json={"role": "member"})
            ).status_code == 409
    local = await _ask(api, "PATCH", "/v1/users/local", json={"role": "member"})
    assert local.status_code == 409
    await _ask(api, "PATCH", "/v1/users/bob", json={"role": "admin"})
    demoted = await _ask(api, "PATCH", "/v1/users/admin", json={"role": "member"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "member"
    assert (await _ask(api, "PATCH", "/v1/users/bob", "bob", json={"disabled": True})
            ).status_code == 409


async def test_owners_and_admins_revoke_keys_and_others_get_404(api: Api) -> None:
    (alice_key,) = await _key_ids(api, "alice")
    (bob_key,) = await _key_ids(api, "bob")
    theirs = await _ask(api, "DELETE", f"/v1/keys/{bob_key}", "alice")
    missing = await _ask(api, "DELETE", "/v1/keys/0123456789abcdef", "alice")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 200
    assert (await _ask(api, "DELETE", f"/v1/keys/{alice_key}", "alice")).status_code == 204
    assert (await api.client.get("/v1/me", headers=api.as_("alice"))).status_code == 401
    assert (await _ask(api, "DELETE", f"/v1/keys/{bob_key}")).status_code == 204
    assert (await _ask(api, "DELETE", f"/v1/keys/{bob_key}")).status_code == 409
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 401


async def test_key_limits_are_set_checked_and_cleared(api: Api) -> None:
    (key_id,) = await _key_ids(api, "alice")
    body = {"tokens_per_day": 50000, "chat": "120/minute", "jobs": "unlimited"}
    updated = await _ask(api, "PUT", f"/v1/keys/{key_id}/limits", json=body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["limits"] == {"chat": "120/minute", "jobs": "unlimited",
                                        "tokens_per_day": "50000"}
    principal = await api.runtime.auth.authenticate(api.keys["alice"])
    assert principal.key_id == key_id
    assert principal.limit_overrides == (("chat", "120/minute"), ("jobs", "unlimited"),
                                         ("tokens_per_day", "50000"))
    for bad in ({"chat": "lots"}, {"speed": "1/second"}, {"tokens_per_day": "many"}):
        response = await _ask(api, "PUT", f"/v1/keys/{key_id}/limits", json=bad)
        assert response.status_code == 400, bad
    negative = await _ask(api, "PUT", f"/v1/keys/{key_id}/limits", json={"tokens_per_day": -5})
    assert negative.status_code == 422
    assert (await _ask(api, "PUT", f"/v1/keys/{key_id}/limits", "alice", json={})
            ).status_code == 403
    assert (await _ask(api, "PUT", "/v1/keys/nope/limits", json={})).status_code == 404
    for clear in ({}, None):
        cleared = await _ask(api, "PUT", f"/v1/keys/{key_id}/limits", json=clear)
        assert cleared.json()["limits"] is None
    assert (await api.runtime.auth.authenticate(api.keys["alice"])).limit_overrides == ()
