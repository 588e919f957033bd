"""Persona test runs over HTTP: 202 and a job, progress events, results, access rules.

The model is the scripted provider, which echoes the user's turn when nothing is
queued, so assertions on the replies pass or fail exactly as a test arranges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.config import ProviderConfig, Settings
from personae.quality.queue import LocalTestQueue
from tests.support.api import Api, serve_app
from tests.support.panel_api import sse_events

SUITE: dict[str, Any] = {
    "name": "smoke",
    "cases": [
        {"name": "echoes", "turns": ["tell me about coffee"], "repeat": 3,
         "expect": [{"kind": "contains_any", "words": ["coffee"]}]},
        {"name": "never", "turns": ["hello"], "repeat": 2,
         "expect": [{"kind": "contains_any", "words": ["zebra"]}]},
    ],
}
SUITE_YAML = """
name: yaml-smoke
cases:
  - name: short
    turns: ["hi"]
    expect: [{kind: length, max_chars: 100}]
"""


@pytest.fixture
async def tapi(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                        default_provider="model", judge_provider=None,
                        providers={"model": ProviderConfig(kind="scripted")})
    async for harness in serve_app(settings):
        yield harness
        await queue(harness).drain()


def queue(api: Api) -> LocalTestQueue:
    found = api.runtime.test_runs.queue
    assert isinstance(found, LocalTestQueue)
    return found


async def persona(api: Api, who: str, visibility: str) -> str:
    body = {"definition": {"id": f"{visibility}-one", "name": "Ada", "greeting": "Hello"},
            "visibility": visibility}
    response = await api.client.post("/v1/personas", json=body, headers=api.as_(who))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def start(api: Api, persona_id: str, who: str = "alice",
                **body: Any) -> dict[str, Any]:
    response = await api.client.post(f"/v1/personas/{persona_id}/tests/run",
                                     json={"suite": SUITE, **body}, headers=api.as_(who))
    assert response.status_code == 202, response.text
    run = response.json()
    assert response.headers["location"] == f"/v1/test-runs/{run['id']}"
    return dict(run)


async def test_a_run_is_a_job_with_events_and_results(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    run = await start(tapi, persona_id)
    assert run["status"] == "queued" and run["progress"] == {"done": 0, "total": 5}
    assert run["persona_version"] == 1 and run["suite"] == "smoke"
    async with tapi.client.stream("GET", f"/v1/test-runs/{run['id']}/events",
                                  headers=tapi.as_("alice")) as response:
        assert response.status_code == 200
        events = await sse_events(response)
    assert events[-1][0] == "done"
    assert events[-1][1] == {"id": run["id"], "status": "completed", "done": 5, "total": 5,
                             "error": None}
    got = (await tapi.client.get(f"/v1/test-runs/{run['id']}", headers=tapi.as_("alice"))).json()
    assert got["status"] == "completed" and got["passed"] is False
    assert got["finished_at"] is not None
    results = await tapi.client.get(f"/v1/test-runs/{run['id']}/results",
                                    headers=tapi.as_("alice"))
    assert results.status_code == 200, results.text
    report = results.json()
    assert report["schema"] == "personae.test-report/1" and report["passed"] is False
    side = report["sides"][0]
    assert (side["persona"], side["version"]) == (persona_id, 1)
    rates = {c["name"]: (c["status"], c["pass_rate"], c["runs"]) for c in side["cases"]}
    assert rates == {"echoes": ("passed", 1.0, 3), "never": ("failed", 0.0, 2)}
    listed = (await tapi.client.get("/v1/test-runs", headers=tapi.as_("alice"))).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]] and listed["count"] == 1


async def test_yaml_suites_repeat_and_model(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    response = await tapi.client.post(
        f"/v1/personas/{persona_id}/tests/run",
        json={"suite_yaml": SUITE_YAML, "repeat": 4, "model": "model:other"},
        headers=tapi.as_("alice"))
    assert response.status_code == 202, response.text
    run = response.json()
    assert (run["repeat"], run["provider"], run["model"]) == (4, "model", "other")
    await queue(tapi).drain()
    report = (await tapi.client.get(f"/v1/test-runs/{run['id']}/results",
                                    headers=tapi.as_("alice"))).json()
    assert report["passed"] is True
    assert report["sides"][0]["cases"][0]["runs"] == 4
    assert report["sides"][0]["model"] == "other"


async def test_private_personas_are_tested_by_their_owner_or_an_admin(tapi: Api) -> None:
    private = await persona(tapi, "alice", "private")
    response = await tapi.client.post(f"/v1/personas/{private}/tests/run",
                                      json={"suite": SUITE}, headers=tapi.as_("bob"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    by_admin = await start(tapi, private, who="admin")
    await queue(tapi).drain()
    # a run is its starter's: another member cannot see it; the persona's owner neither
    for who in ("bob", "alice"):
        seen = await tapi.client.get(f"/v1/test-runs/{by_admin['id']}", headers=tapi.as_(who))
        assert seen.status_code == 404
    public = await persona(tapi, "alice", "public")
    by_bob = await start(tapi, public, who="bob")
    await queue(tapi).drain()
    done = await tapi.client.get(f"/v1/test-runs/{by_bob['id']}", headers=tapi.as_("bob"))
    assert done.json()["status"] == "completed"
    everyone = (await tapi.client.get("/v1/test-runs", headers=tapi.as_("admin"))).json()
    assert {r["id"] for r in everyone["data"]} == {by_admin["id"], by_bob["id"]}


@pytest.mark.parametrize(("body", "path"), [
    ({"suite": {"name": "x", "cases": [{"name": "a", "turns": [],
                                        "expect": [{"kind": "greeting"}]}]}},
     "suite.cases[0].turns"),
    ({"suite": {"name": "x", "cases": [{"name": "a", "turns": ["hi"],
                                        "expect": [{"kind": "regex", "pattern": "("}]}]}},
     "suite.cases[0].expect[0].pattern"),
    ({"suite_yaml": "name: x\ncases:\n  - name: a\n    turns: [hi]\n    expect: []\n"},
     "suite_yaml.cases[0].expect"),
    ({"suite": {"name": "x", "cases": [{"name": "a", "turns": ["t"] * 21,
                                        "expect": [{"kind": "greeting"}]}]}},
     "suite.cases[0].turns"),
    ({"suite": {"name": "x", "repeat": 50, "cases": [
        {"name": f"c{n}", "turns": ["t"], "expect": [{"kind": "greeting"}]}
        for n in range(41)]}}, "suite"),
])
async def test_a_bad_suite_is_a_422_naming_the_path(tapi: Api, body: dict[str, Any],
                                                     path: str) -> None:
    persona_id = await persona(tapi, "alice", "private")
    response = await tapi.client.post(f"/v1/personas/{persona_id}/tests/run", json=body,
                                      headers=tapi.as_("alice"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert path in [issue["path"] for issue in error["details"]["errors"]]
    listed = (await tapi.client.get("/v1/test-runs", headers=tapi.as_("alice"))).json()
    assert listed["count"] == 0


async def test_neither_or_both_suites_and_bad_options_are_refused(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    url = f"/v1/personas/{persona_id}/tests/run"
    for body in ({}, {"suite": SUITE, "suite_yaml": SUITE_YAML}, {"suite": SUITE, "repeat": 51},
                 {"suite_yaml": "name: [unclosed"}):
        response = await tapi.client.post(url, json=body, headers=tapi.as_("alice"))
        assert response.status_code in (400, 422), (body, response.text)
        assert "error" in response.json()
    unknown = await tapi.client.post(url, json={"suite": SUITE, "model": "nope:x"},
                                     headers=tapi.as_("alice"))
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]["message"]


async def test_results_before_completion_are_409_and_cancel_stops_the_run(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    slots = queue(tapi).pool.slots
    await slots.acquire()  # every slot taken: the run stays queued until released
    try:
        for _ in range(7):
            await slots.acquire()
        run = await start(tapi, persona_id)
        early = await tapi.client.get(f"/v1/test-runs/{run['id']}/results",
                                      headers=tapi.as_("alice"))
        assert early.status_code == 409
        assert early.json()["error"]["details"] == {"status": "queued"}
        other = await tapi.client.post(f"/v1/test-runs/{run['id']}/cancel",
                                       headers=tapi.as_("bob"))
        assert other.status_code == 404
        cancelled = await tapi.client.post(f"/v1/test-runs/{run['id']}/cancel",
                                           headers=tapi.as_("alice"))
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
    finally:
        for _ in range(8):
            slots.release()
    await queue(tapi).drain()
    got = (await tapi.client.get(f"/v1/test-runs/{run['id']}", headers=tapi.as_("alice"))).json()
    assert got["status"] == "cancelled" and got["progress"]["done"] == 0
    late = await tapi.client.get(f"/v1/test-runs/{run['id']}/results",
                                 headers=tapi.as_("alice"))
    assert late.status_code == 409 and "cancelled" in late.json()["error"]["message"]


async def test_unknown_runs_are_404(tapi: Api) -> None:
    for method, url in (("GET", "/v1/test-runs/nope"), ("GET", "/v1/test-runs/nope/results"),
                        ("GET", "/v1/test-runs/nope/events"),
                        ("POST", "/v1/test-runs/nope/cancel")):
        response = await tapi.client.request(method, url, headers=tapi.as_("alice"))
        assert response.status_code == 404, url
    missing = await tapi.client.post("/v1/personas/nobody/tests/run", json={"suite": SUITE},
                                     headers=tapi.as_("alice"))
    assert missing.status_code == 404


KEYWORD_SUITE: dict[str, Any] = {
    "name": "keywords",
    "cases": [
        {"name": "uses a keyword", "turns": ["tell me about coffee"],
         "expect": [{"kind": "contains_any", "from": "expertise_keywords"}]},
        {"name": "avoids keywords", "turns": ["tell me about coffee"],
         "expect": [{"kind": "contains_none", "from": "expertise_keywords"}]},
    ],
}


async def test_a_completed_run_has_a_summary_and_runs_filter_by_persona(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    other_id = await persona(tapi, "alice", "public")
    run = await start(tapi, persona_id)
    assert run["summary"] is None
    await queue(tapi).drain()
    got = (await tapi.client.get(f"/v1/test-runs/{run['id']}", headers=tapi.as_("alice"))).json()
    assert got["summary"] == {"cases": 2, "passed": 1, "failed": 1, "skipped": 0,
                              "pass_rate": 0.5}
    url = "/v1/test-runs?persona="
    mine = (await tapi.client.get(url + persona_id, headers=tapi.as_("alice"))).json()
    assert [r["id"] for r in mine["data"]] == [run["id"]]
    none = (await tapi.client.get(url + other_id, headers=tapi.as_("alice"))).json()
    assert none == {"data": [], "count": 0, "limit": 50, "offset": 0}


async def test_compare_shows_flips_between_two_versions(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    headers = tapi.as_("alice")
    patch = await tapi.client.patch(f"/v1/personas/{persona_id}", headers=headers, json={
        "definition": {"expertise_keywords": ["tea"]}, "base_version": 1})
    assert patch.status_code == 200, patch.text
    before = await start(tapi, persona_id, suite=KEYWORD_SUITE)
    await queue(tapi).drain()
    patch = await tapi.client.patch(f"/v1/personas/{persona_id}", headers=headers, json={
        "definition": {"expertise_keywords": ["coffee"]}, "base_version": 2})
    assert patch.status_code == 200, patch.text
    after = await start(tapi, persona_id, suite=KEYWORD_SUITE)
    await queue(tapi).drain()
    response = await tapi.client.get(
        f"/v1/test-runs/{after['id']}/compare/{before['id']}", headers=headers)
    assert response.status_code == 200, response.text
    compared = response.json()
    assert [s["version"] for s in compared["sides"]] == [3, 2]
    assert compared["flips"] == {"uses a keyword": "fail→pass",
                                 "avoids keywords": "pass→fail"}
    rows = {c["name"]: (c["other_status"], c["status"]) for c in compared["cases"]}
    assert rows == {"uses a keyword": ("failed", "passed"),
                    "avoids keywords": ("passed", "failed")}
    hidden = await tapi.client.get(f"/v1/test-runs/{after['id']}/compare/{before['id']}",
                                   headers=tapi.as_("bob"))
    assert hidden.status_code == 404


async def test_compare_needs_two_completed_runs(tapi: Api) -> None:
    persona_id = await persona(tapi, "alice", "private")
    done = await start(tapi, persona_id)
    await queue(tapi).drain()
    slots = queue(tapi).pool.slots
    for _ in range(8):
        await slots.acquire()  # every slot taken: the next run stays queued
    try:
        waiting = await start(tapi, persona_id)
        response = await tapi.client.get(f"/v1/test-runs/{done['id']}/compare/{waiting['id']}",
                                         headers=tapi.as_("alice"))
        assert response.status_code == 409
        assert response.json()["error"]["details"] == {"status": "queued"}
    finally:
        for _ in range(8):
            slots.release()
    missing = await tapi.client.get(f"/v1/test-runs/{done['id']}/compare/nope",
                                    headers=tapi.as_("alice"))
    assert missing.status_code == 404


async def test_a_sample_persona_has_its_shipped_suite(tapi: Api) -> None:
    await tapi.runtime.load_samples()
    shipped = await tapi.client.get("/v1/personas/tina-kulkarni/tests/suite",
                                    headers=tapi.as_("bob"))
    assert shipped.status_code == 200, shipped.text
    suite = shipped.json()
    assert suite["available"] is True and suite["name"] == "tina-kulkarni basics"
    assert "persona: tina-kulkarni" in suite["suite_yaml"] and suite["cases"] >= 3
    own = await persona(tapi, "alice", "private")
    none = (await tapi.client.get(f"/v1/personas/{own}/tests/suite",
                                  headers=tapi.as_("alice"))).json()
    assert none == {"persona_id": own, "available": False, "name": None, "cases": 0,
                    "suite_yaml": None}
    hidden = await tapi.client.get(f"/v1/personas/{own}/tests/suite", headers=tapi.as_("bob"))
    assert hidden.status_code == 404
    run = await tapi.client.post("/v1/personas/tina-kulkarni/tests/run",
                                 json={"suite_yaml": suite["suite_yaml"]},
                                 headers=tapi.as_("bob"))
    assert run.status_code == 202 and run.json()["suite"] == "tina-kulkarni basics"
