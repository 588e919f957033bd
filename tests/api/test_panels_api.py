"""``/v1/panels`` over HTTP: CRUD, validation with field paths, and isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.panel_api import ADVERTISER, GENZ, PanelApi


def _paths(response: Any) -> dict[str, str]:
    return {e["path"]: e["message"] for e in response.json()["error"]["details"]["errors"]}


async def test_panel_crud(papi: PanelApi) -> None:
    rubric = {"scale_min": 0, "scale_max": 10, "anchors": {"0": "awful", "10": "superb"},
              "extra_fields": {"would_share": {"type": "boolean"}}}
    created = await papi.panel(description="young and brands", rubric=rubric, adherence=True)
    assert created["personas"] == [GENZ, ADVERTISER]
    assert created["rubric"]["scale_max"] == 10
    assert created["rubric"]["anchors"] == {"0": "awful", "10": "superb"}
    assert (created["classify"], created["adherence"]) == (True, True)
    pid = created["id"]
    for ref in (pid, "listeners"):
        got = await papi.client.get(f"/v1/panels/{ref}", headers=papi.as_("alice"))
        assert got.status_code == 200
        assert got.json() == created

    listed = (await papi.client.get("/v1/panels", headers=papi.as_("alice"))).json()
    assert listed["count"] == 1
    assert [p["id"] for p in listed["data"]] == [pid]

    replaced = await papi.client.put(f"/v1/panels/{pid}", json={
        "name": "just-genz", "personas": [GENZ]}, headers=papi.as_("alice"))
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["id"], body["name"], body["personas"]) == (pid, "just-genz", [GENZ])
    assert body["description"] == "" and body["adherence"] is False  # full replace
    assert body["rubric"]["scale_max"] == 5
    by_name = await papi.client.get("/v1/panels/just-genz", headers=papi.as_("alice"))
    assert by_name.json()["id"] == pid

    deleted = await papi.client.delete("/v1/panels/just-genz", headers=papi.as_("alice"))
    assert deleted.status_code == 204
    gone = await papi.client.get(f"/v1/panels/{pid}", headers=papi.as_("alice"))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_duplicate_name_is_409(papi: PanelApi) -> None:
    await papi.panel()
    again = await papi.client.post("/v1/panels", json={"name": "listeners",
                                                       "personas": [GENZ]},
                                   headers=papi.as_("alice"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "listeners" in again.json()["error"]["message"]
    other = await papi.panel(name="other", personas=[ADVERTISER])
    renamed = await papi.client.put(f"/v1/panels/{other['id']}", json={
        "name": "listeners", "personas": [ADVERTISER]}, headers=papi.as_("alice"))
    assert renamed.status_code == 409
    await papi.panel(who="bob")  # names are per owner


async def test_unknown_persona_is_400_naming_it(papi: PanelApi) -> None:
    response = await papi.client.post("/v1/panels", json={
        "name": "ghosts", "personas": [GENZ, "nobody-here"]}, headers=papi.as_("alice"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "nobody-here" in error["message"]
    assert error["details"] == {"persona": "nobody-here"}


@pytest.mark.parametrize(("rubric", "path", "words"), [
    ({"scale_min": 5, "scale_max": 5}, "rubric", "scale_max must be greater than scale_min"),
    ({"scale_min": 3, "scale_max": 1}, "rubric", "scale_max must be greater than scale_min"),
    ({"extra_fields": {"score": {"type": "integer"}}}, "rubric.extra_fields",
     "'score' is always part of the answer"),
    ({"extra_fields": {"mood": {"type": "no-such-type"}}}, "rubric.extra_fields",
     "'mood': not a valid JSON schema"),
    ({"scale_max": "high"}, "rubric.scale_max", "whole number"),
    ({"colour": "red"}, "rubric.colour", "not a known field"),
])
async def test_bad_rubric_is_422_with_field_paths(papi: PanelApi, rubric: dict[str, Any],
                                                  path: str, words: str) -> None:
    for method, url in (("POST", "/v1/panels"), ("PUT", "/v1/panels/listeners")):
        if method == "PUT":
            await papi.panel()
        response = await papi.client.request(method, url, json={
            "name": "listeners", "personas": [GENZ], "rubric": rubric},
            headers=papi.as_("alice"))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
        issues = _paths(response)
        assert path in issues, issues
        assert words in issues[path]


async def test_bad_panel_fields_are_422(papi: PanelApi) -> None:
    response = await papi.client.post("/v1/panels", json={
        "name": "", "personas": [], "extra": 1}, headers=papi.as_("alice"))
    assert response.status_code == 422
    assert set(_paths(response)) == {"name", "personas", "extra"}
    twice = await papi.client.post("/v1/panels", json={
        "name": "twice", "personas": [GENZ, GENZ]}, headers=papi.as_("alice"))
    assert twice.status_code == 422
    assert "listed more than once: genz-listener" in _paths(twice)["personas"]


async def test_another_users_panel_is_404(papi: PanelApi) -> None:
    pid = (await papi.panel())["id"]
    for ref in (pid, "listeners"):
        for method, body in (("GET", None), ("PUT", {"name": "mine", "personas": [GENZ]}),
                             ("DELETE", None)):
            response = await papi.client.request(method, f"/v1/panels/{ref}", json=body,
                                                 headers=papi.as_("bob"))
            assert response.status_code == 404, (method, ref)
            assert response.json()["error"]["code"] == "not_found"
    listed = (await papi.client.get("/v1/panels", headers=papi.as_("bob"))).json()
    assert listed == {"data": [], "count": 0}
    mine = await papi.client.get(f"/v1/panels/{pid}", headers=papi.as_("alice"))
    assert mine.json()["personas"] == [GENZ, ADVERTISER]  # untouched by bob's attempts


async def test_unauthenticated_is_401(papi: PanelApi) -> None:
    for method, url in (("GET", "/v1/panels"), ("POST", "/v1/panels"),
                        ("GET", "/v1/panels/listeners"), ("GET", "/v1/evaluations"),
                        ("POST", "/v1/evaluations"), ("GET", "/v1/evaluations/abc/events")):
        response = await papi.client.request(method, url)
        assert response.status_code == 401, (method, url)
        assert response.json()["error"]["code"] == "unauthenticated"


async def test_writes_without_the_sqlite_write_lock(papi: PanelApi) -> None:
    papi.api.runtime.panels.store._write_lock = None  # what PostgreSQL always gets
    await papi.panel()
