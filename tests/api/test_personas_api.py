"""The /v1/personas API end to end: real app, real database, real keys."""

from __future__ import annotations

from tests.support.api import Api

TINA = {"id": "tina", "name": "Tina Kulkarni", "language": "hi", "greeting": "नमस्ते",
        "pricing_model": {"per_minute": "INR 30"}}


async def _create(api: Api, who: str = "admin", **extra: object) -> dict:
    body = {"definition": TINA, **extra}
    response = await api.client.post("/v1/personas", json=body, headers=api.as_(who))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_and_etag(api: Api) -> None:
    created = await _create(api, **{"global": True})
    assert created["version"] == 1 and created["scope"] == "global"
    assert created["definition"]["traits"] == {"pricing_model": {"per_minute": "INR 30"}}
    got = await api.client.get("/v1/personas/tina", headers=api.as_("bob"))
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    assert got.json() == created
    again = await api.client.get("/v1/personas/tina",
                                 headers={**api.as_("bob"), "If-None-Match": '"1"'})
    assert again.status_code == 304


async def test_validation_error_names_the_field(api: Api) -> None:
    response = await api.client.post(
        "/v1/personas", json={"definition": {"name": "X", "greetings": [" "]}},
        headers=api.as_("alice"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "greetings[0]: must not be empty"
    assert error["details"]["errors"] == [{"path": "greetings[0]",
                                           "message": "must not be empty"}]


async def test_malformed_body_is_a_4xx_in_the_error_shape(api: Api) -> None:
    response = await api.client.post("/v1/personas", content=b"{not json",
                                      headers={**api.as_("alice"),
                                               "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    missing = await api.client.post("/v1/personas", json={"nope": 1}, headers=api.as_("alice"))
    assert missing.status_code == 422
    assert "definition: is required" in missing.json()["error"]["message"]


async def test_update_needs_base_version_and_rejects_stale(api: Api) -> None:
    await _create(api, "alice")
    url, alice = "/v1/personas/alice/tina", api.as_("alice")
    no_base = await api.client.patch(url, json={"definition": {"description": "x"}},
                                     headers=alice)
    assert no_base.status_code == 428
    ok = await api.client.patch(url, json={"definition": {"description": "x"}},
                                headers={**alice, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = await api.client.put(url, json={"definition": TINA, "base_version": 1},
                                 headers=alice)
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["current_version"] == 2
    put = await api.client.put(url, json={"definition": TINA, "base_version": 2}, headers=alice)
    assert put.status_code == 200 and put.json()["definition"].get("description") is None


async def test_id_cannot_change_on_put(api: Api) -> None:
    await _create(api, "alice")
    response = await api.client.put("/v1/personas/alice/tina",
                                    json={"definition": {**TINA, "id": "other"},
                                          "base_version": 1}, headers=api.as_("alice"))
    assert response.status_code == 400
    assert "cannot change a persona's id" in response.json()["error"]["message"]


async def test_versions_diff_rollback(api: Api) -> None:
    await _create(api, "alice")
    alice = api.as_("alice")
    await api.client.patch("/v1/personas/alice/tina", json={"definition": {"description": "v2"},
                                                       "base_version": 1}, headers=alice)
    versions = (await api.client.get("/v1/personas/alice/tina/versions", headers=alice)).json()
    assert [v["version"] for v in versions["data"]] == [1, 2]
    v1 = (await api.client.get("/v1/personas/alice/tina/versions/1", headers=alice)).json()
    assert "description" not in v1["definition"]
    diff = (await api.client.get("/v1/personas/alice/tina/diff?from=1&to=2", headers=alice)).json()
    assert diff["changed_fields"] == ["description"]
    rolled = await api.client.post("/v1/personas/alice/tina/rollback", json={"version": 1},
                                   headers=alice)
    assert rolled.json()["version"] == 3
    missing = await api.client.get("/v1/personas/alice/tina/versions/9", headers=alice)
    assert missing.status_code == 404


async def test_archive_restore_and_hard_delete(api: Api) -> None:
    await _create(api, "alice")
    alice = api.as_("alice")
    archived = await api.client.post("/v1/personas/alice/tina/archive", headers=alice)
    assert archived.json()["status"] == "archived"
    listing = (await api.client.get("/v1/personas", headers=alice)).json()
    assert listing["count"] == 0
    restored = await api.client.post("/v1/personas/alice/tina/restore", headers=alice)
    assert restored.json()["status"] == "active"
    forbidden = await api.client.delete("/v1/personas/alice/tina?hard=true", headers=alice)
    assert forbidden.status_code == 403
    gone = await api.client.delete("/v1/personas/alice/tina?hard=true", headers=api.as_("admin"))
    assert gone.status_code == 204
    assert (await api.client.get("/v1/personas/alice/tina", headers=alice)).status_code == 404


async def test_list_filters_and_pagination(api: Api) -> None:
    for index in range(5):
        body = {"definition": {"id": f"p{index}", "name": f"P{index}",
                               "language": "hi" if index < 2 else "en",
                               "tags": ["astro"] if index % 2 else []}, "global": True}
        await api.client.post("/v1/personas", json=body, headers=api.as_("admin"))
    bob = api.as_("bob")
    page = (await api.client.get("/v1/personas?limit=2&offset=2", headers=bob)).json()
    assert page["count"] == 5 and [p["id"] for p in page["data"]] == ["p2", "p3"]
    hindi = (await api.client.get("/v1/personas?language=Hindi", headers=bob)).json()
    assert [p["id"] for p in hindi["data"]] == ["p0", "p1"]
    tagged = (await api.client.get("/v1/personas?tag=astro", headers=bob)).json()
    assert [p["id"] for p in tagged["data"]] == ["p1", "p3"]
    bad = await api.client.get("/v1/personas?language=notalanguage123", headers=bob)
    assert bad.status_code == 400


async def test_prompt_renders_a_brand_new_trait(api: Api) -> None:
    await _create(api, "alice")
    prompt = (await api.client.get("/v1/personas/alice/tina/prompt",
                                   headers=api.as_("alice"))).json()
    assert "## Pricing model\n- Per minute: INR 30" in prompt["system_prompt"]


async def test_a_write_that_changes_nothing_makes_no_version(api: Api) -> None:
    await _create(api, "alice")
    same = await api.client.put("/v1/personas/alice/tina",  # "tina": the name in her namespace
                                json={"definition": TINA, "base_version": 1},
                                headers=api.as_("alice"))
    assert same.status_code == 200
    assert same.json()["version"] == 1


async def _alice_persona(api: Api, pid: str, name: str) -> None:
    created = await api.client.post("/v1/personas", json={"definition": {
        "id": pid, "name": name, "greetings": ["Hi."]}}, headers=api.as_("alice"))
    assert created.status_code == 201, created.text


async def _ids(api: Api, **params: str) -> list[str]:
    response = await api.client.get("/v1/personas", params={"owner": "me", **params},
                                    headers=api.as_("alice"))
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]]


async def test_listing_sorts_by_name_newest_and_updated(api: Api) -> None:
    for pid, name in (("b", "Bravo"), ("a", "Alpha"), ("c", "Charlie")):
        await _alice_persona(api, pid, name)
    assert await _ids(api) == ["alice/a", "alice/b", "alice/c"]
    assert await _ids(api, sort="newest") == ["alice/c", "alice/a", "alice/b"]
    changed = await api.client.patch("/v1/personas/alice/b", json={
        "definition": {"description": "changed"}, "base_version": 1}, headers=api.as_("alice"))
    assert changed.status_code == 200
    assert (await _ids(api, sort="updated"))[0] == "alice/b"
    bad = await api.client.get("/v1/personas?sort=loudest", headers=api.as_("alice"))
    assert bad.status_code == 422


async def test_listing_sorts_most_used_first(wapi: Api) -> None:
    for pid, name in (("quiet", "Aaron"), ("busy", "Zed"), ("some", "Mia")):
        await _alice_persona(wapi, pid, name)
    for pid, turns in (("alice/busy", 2), ("alice/some", 1)):
        opened = await wapi.client.post("/v1/sessions", json={"persona_id": pid},
                                        headers=wapi.as_("alice"))
        sid = opened.json()["session"]["id"]
        for number in range(turns):
            sent = await wapi.client.post(f"/v1/sessions/{sid}/messages",
                                          json={"content": f"hello {number}"},
                                          headers=wapi.as_("alice"))
            assert sent.status_code == 200, sent.text
    assert await _ids(wapi, sort="most_used") == ["alice/busy", "alice/some", "alice/quiet"]


async def test_prompt_has_its_token_count(api: Api) -> None:
    await _create(api, "alice")
    prompt = (await api.client.get("/v1/personas/alice/tina/prompt",
                                   headers=api.as_("alice"))).json()
    assert prompt["tokens"] == api.runtime.providers.resolve(None)[0].count_tokens(
        prompt["system_prompt"])
    assert prompt["tokens"] > 10


async def test_diff_has_the_persona_files_line_by_line(api: Api) -> None:
    await _create(api, "alice")
    changed = await api.client.patch("/v1/personas/alice/tina", json={
        "definition": {"description": "A palmist"}, "base_version": 1},
        headers=api.as_("alice"))
    assert changed.status_code == 200
    diff = (await api.client.get("/v1/personas/alice/tina/diff?from=1&to=2",
                                 headers=api.as_("alice"))).json()
    assert diff["changed_fields"] == ["description"]
    assert diff["lines"][:2] == ["--- version 1", "+++ version 2"]
    assert "+description: A palmist" in diff["lines"]
    assert not any(line.startswith("-") and not line.startswith("---")
                   for line in diff["lines"])


async def test_replace_from_the_persona_file_text(api: Api) -> None:
    await _create(api, "alice")
    url, alice = "/v1/personas/alice/tina", api.as_("alice")
    text = (await api.client.get(f"{url}/export?format=yaml", headers=alice)).text
    edited = text.replace("name: Tina Kulkarni", "name: Tina K.")
    assert edited != text
    saved = await api.client.put(url, json={"definition_yaml": edited, "base_version": 1,
                                            "note": "from the file"}, headers=alice)
    assert saved.status_code == 200, saved.text
    assert saved.json()["definition"]["name"] == "Tina K." and saved.json()["version"] == 2
    broken = await api.client.put(url, json={"definition_yaml": "name: [unclosed",
                                             "base_version": 2}, headers=alice)
    assert broken.status_code == 400
    assert broken.json()["error"]["message"].startswith("definition_yaml: line ")
    invalid = await api.client.put(url, json={"definition_yaml": "name: X\ngreetings: [' ']",
                                              "base_version": 2}, headers=alice)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"]["errors"][0]["path"] == "greetings[0]"
    both = await api.client.put(url, json={"definition": {"name": "X"}, "definition_yaml":
                                           "name: X", "base_version": 2}, headers=alice)
    assert both.status_code == 422
