"""Who may do what over HTTP."""

from __future__ import annotations

from tests.support.api import Api


async def test_requests_without_a_valid_key_are_refused(api: Api) -> None:
    anonymous = await api.client.get("/v1/personas")
    assert anonymous.status_code == 401
    assert "API key is required" in anonymous.json()["error"]["message"]
    wrong = await api.client.get("/v1/personas", headers={"Authorization": "Bearer pk_nope"})
    assert wrong.status_code == 401
    malformed = await api.client.get("/v1/personas", headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401


async def test_me_reports_the_caller(api: Api) -> None:
    me = (await api.client.get("/v1/me", headers=api.as_("alice"))).json()
    assert me["name"] == "alice" and me["role"] == "member"


async def test_member_cannot_edit_global_persona(api: Api) -> None:
    await api.client.post("/v1/personas", json={"definition": {"id": "g", "name": "G"},
                                                "global": True}, headers=api.as_("admin"))
    patch = await api.client.patch("/v1/personas/g", json={"definition": {"description": "x"},
                                                           "base_version": 1},
                                   headers=api.as_("alice"))
    assert patch.status_code == 403
    assert patch.json()["error"]["code"] == "forbidden"
    member_global = await api.client.post(
        "/v1/personas", json={"definition": {"id": "h", "name": "H"}, "global": True},
        headers=api.as_("alice"))
    assert member_global.status_code == 403


async def test_member_cannot_read_another_members_private_persona(api: Api) -> None:
    await api.client.post("/v1/personas", json={"definition": {"id": "secret", "name": "S"}},
                          headers=api.as_("alice"))
    bob = api.as_("bob")
    for path in ("", "/versions", "/versions/1", "/prompt", "/export", "/diff"):
        response = await api.client.get(f"/v1/personas/alice/secret{path}", headers=bob)
        assert response.status_code == 404, path
    listing = (await api.client.get("/v1/personas?q=secret", headers=bob)).json()
    assert listing["count"] == 0
    mine = await api.client.get("/v1/personas/alice/secret", headers=api.as_("alice"))
    assert mine.status_code == 200


async def test_revoked_key_stops_working(api: Api) -> None:
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 200
    bob = await api.runtime.users.get_user("bob")
    assert bob is not None
    (key,) = await api.runtime.users.list_keys(bob.id)
    await api.runtime.users.revoke_key(key.id)
    api.runtime.auth.forget()  # other processes drop their short-lived key cache by TTL
    assert (await api.client.get("/v1/me", headers=api.as_("bob"))).status_code == 401


async def test_openapi_and_offline_docs_are_served(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    assert "/v1/personas/{persona_id}" in schema["paths"]
    page = await api.client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    script = await api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200


async def test_unknown_route_uses_the_error_shape(api: Api) -> None:
    response = await api.client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
