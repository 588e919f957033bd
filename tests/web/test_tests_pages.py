"""The persona tests pages over HTTP: choosing a persona and its suite, the list of runs
with pass rates, one run's cases and its comparison with another run, and the API calls
the page's script makes with the cookie and the page's CSRF token.

The app's model is the scripted fake, which echoes the user's turn when nothing is
queued, so a case passes or fails exactly as the suite arranges.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from personae.quality.queue import LocalTestQueue
from personae.quality.shipped import shipped_suite
from tests.support.api import Api, serve_app
from tests.support.panel_api import sse_events
from tests.support.web import WebUser
from tests.support.writing_samples import scripted_settings

XSS = "<script>alert(1)</script>"
SUITE: dict[str, Any] = {
    "name": "smoke",
    "cases": [
        {"name": "echoes", "turns": ["tell me about coffee"], "repeat": 2,
         "expect": [{"kind": "contains_any", "words": ["coffee"]}]},
        {"name": "never", "turns": ["hello"],
         "expect": [{"kind": "contains_any", "words": ["zebra"]}]},
    ],
}
KEYWORDS: dict[str, Any] = {
    "name": "keywords",
    "cases": [{"name": "uses a keyword", "turns": ["tell me about coffee"],
               "expect": [{"kind": "contains_any", "from": "expertise_keywords"}]}],
}


@pytest.fixture
async def web(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app (keys needed) whose default model is the scripted fake, samples loaded."""
    async for harness in serve_app(scripted_settings(sqlite_url, tmp_path,
                                                     anonymous_loopback=False,
                                                     judge_provider=None)):
        await harness.runtime.load_samples()
        yield harness
        await queue(harness).drain()


def queue(web: Api) -> LocalTestQueue:
    found = web.runtime.test_runs.queue
    assert isinstance(found, LocalTestQueue)
    return found


async def persona(web: Api, who: str = "alice", name: str = "Ada",
                  visibility: str = "private", slug: str = "tested", **fields: Any) -> str:
    response = await web.client.post("/v1/personas", headers=web.as_(who), json={
        "definition": {"id": slug, "name": name, "greeting": "Hello", **fields},
        "visibility": visibility})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def run_to_end(web: Api, persona_id: str, who: str = "alice",
                     suite: dict[str, Any] = SUITE) -> str:
    response = await web.client.post(f"/v1/personas/{persona_id}/tests/run",
                                     json={"suite": suite}, headers=web.as_(who))
    assert response.status_code == 202, response.text
    await queue(web).drain()
    return str(response.json()["id"])


# -- choosing a persona and its suite --------

async def test_the_page_offers_readable_personas_and_no_runs_yet(web: Api, alice: WebUser,
                                                                 bob: WebUser) -> None:
    mine = await persona(web, "alice")
    page = (await alice.page("/tests")).text
    assert f'<option value="{mine}">Ada ({mine})</option>' in page
    assert '<option value="tina-kulkarni">' in page
    assert 'id="runs-empty">No runs yet.' in page and 'id="run-form"' not in page
    assert 'aria-current="page">Tests' in page
    assert mine not in (await bob.page("/tests")).text


async def test_a_sample_persona_comes_with_its_shipped_suite(alice: WebUser) -> None:
    page = (await alice.page("/tests?persona=tina-kulkarni")).text
    shipped = shipped_suite("tina-kulkarni")
    assert shipped is not None
    assert '<option value="tina-kulkarni" selected>' in page
    assert f"<strong>{shipped.name}</strong>, {shipped.cases}" in page
    assert str(escape(shipped.text)) in page  # the YAML, ready to run, in the textarea
    assert 'data-persona="tina-kulkarni"' in page and 'id="no-tests"' not in page


async def test_a_persona_without_tests_says_how_to_add_them(web: Api, alice: WebUser) -> None:
    mine = await persona(web)
    response = await alice.page(f"/tests?persona={mine}")
    assert 'id="no-tests"' in response.text and "no test suite yet" in response.text
    assert f"personae test suite.yaml --persona {mine}" in response.text
    assert "Persona tests" in response.text and "kind: no_persona_break" in response.text


async def test_another_users_private_persona_is_a_404_page(web: Api, bob: WebUser) -> None:
    theirs = await persona(web, "alice")
    response = await bob.page(f"/tests?persona={theirs}", expect=404)
    assert "Not found" in response.text


async def test_a_visitor_is_sent_to_sign_in(visitor: WebUser) -> None:
    response = await visitor.client.get("/tests", headers={"Accept": "text/html"})
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=%2Ftests"


# -- runs: list, pass rates, one run's cases --------

async def test_runs_are_listed_with_their_pass_rate(web: Api, alice: WebUser,
                                                    bob: WebUser) -> None:
    mine = await persona(web)
    run_id = await run_to_end(web, mine)
    page = (await alice.page("/tests")).text
    assert f'<tr data-run="{run_id}">' in page and f'href="/tests/{run_id}">smoke</a>' in page
    assert "50% (1/2 cases)" in page and '<span class="badge ok">completed</span>' in page
    assert run_id not in (await bob.page("/tests")).text


async def test_a_run_page_shows_each_case(web: Api, alice: WebUser) -> None:
    run_id = await run_to_end(web, await persona(web))
    page = (await alice.page(f"/tests/{run_id}")).text
    assert "<h1>smoke</h1>" in page
    assert '<th scope="row">echoes</th>' in page and "100% (2/2)" in page
    assert '<th scope="row">never</th>' in page and "0% (0/1)" in page
    assert '<span class="badge failed">failed</span>' in page
    assert "echoes: 2 repetitions" in page and "tell me about coffee" in page  # the replies
    assert "No other completed run" in page and 'id="follow-progress"' not in page


async def test_another_users_run_is_a_404_page(web: Api, alice: WebUser, bob: WebUser) -> None:
    run_id = await run_to_end(web, await persona(web))
    response = await bob.page(f"/tests/{run_id}", expect=404)
    assert "Not found" in response.text and "smoke" not in response.text
    await alice.page(f"/tests/{run_id}")


async def test_a_run_still_going_shows_its_progress(web: Api, alice: WebUser) -> None:
    mine = await persona(web)
    slots = queue(web).pool.slots
    for _ in range(8):
        await slots.acquire()  # every slot taken: the run stays queued
    try:
        response = await web.client.post(f"/v1/personas/{mine}/tests/run",
                                         json={"suite": SUITE}, headers=web.as_("alice"))
        run_id = response.json()["id"]
        page = (await alice.page(f"/tests/{run_id}")).text
    finally:
        for _ in range(8):
            slots.release()
    assert '<progress id="follow-progress" max="3" value="0"' in page
    assert "0 of 3 repetitions" in page and 'class="cases"' not in page
    found = re.search(r'<script type="application/json" id="test-run">(.*?)</script>', page)
    assert found and json.loads(found.group(1)) == {"run": run_id, "finished": False}


async def test_names_cases_and_replies_are_escaped(web: Api, alice: WebUser) -> None:
    mine = await persona(web, name=XSS)
    suite = {"name": XSS, "cases": [{"name": XSS, "turns": [XSS],
                                     "expect": [{"kind": "length", "max_chars": 100}]}]}
    run_id = await run_to_end(web, mine, suite=suite)
    for path in ("/tests", f"/tests?persona={mine}", f"/tests/{run_id}"):
        page = (await alice.page(path)).text
        assert XSS not in page, path
    assert str(escape(XSS)) in page


# -- comparing two runs --------

async def test_two_versions_are_compared_case_by_case(web: Api, alice: WebUser) -> None:
    mine = await persona(web, expertise_keywords=["tea"])
    before = await run_to_end(web, mine, suite=KEYWORDS)
    patch = await web.client.patch(f"/v1/personas/{mine}", headers=web.as_("alice"), json={
        "definition": {"expertise_keywords": ["coffee"]}, "base_version": 1})
    assert patch.status_code == 200, patch.text
    after = await run_to_end(web, mine, suite=KEYWORDS)
    page = (await alice.page(f"/tests/{after}")).text
    assert f'<option value="{before}">keywords, version 1' in page
    compared = (await alice.page(f"/tests/{after}?against={before}")).text
    assert "From version 1" in compared and "to version 2" in compared and "1 flip" in compared
    assert '<span class="badge ok">fail→pass</span>' in compared
    assert "failed, 0% (0/1)" in compared and "passed, 100% (1/1)" in compared


async def test_comparing_with_another_users_run_is_a_404_page(web: Api, alice: WebUser) -> None:
    mine = await run_to_end(web, await persona(web))
    public = await persona(web, "alice", visibility="public", name="Shared", slug="shared")
    theirs = await run_to_end(web, public, who="bob")  # bob's run of alice's public persona
    response = await alice.page(f"/tests/{mine}?against={theirs}", expect=404)
    assert "Not found" in response.text


# -- what the page's script calls --------

async def test_a_run_starts_and_reports_progress_with_the_cookie(web: Api,
                                                                 alice: WebUser) -> None:
    await alice.page("/tests?persona=genz-listener")
    shipped = shipped_suite("genz-listener")
    assert shipped is not None
    started = await alice.api("POST", "/v1/personas/genz-listener/tests/run",
                              json={"suite_yaml": shipped.text, "repeat": 2})
    assert started.status_code == 202, started.text
    run = started.json()
    async with alice.client.stream("GET", f"/v1/test-runs/{run['id']}/events") as response:
        events = await sse_events(response)
    assert events[-1][0] == "done" and events[-1][1]["done"] == events[-1][1]["total"] == 6
    got = (await alice.api("GET", f"/v1/test-runs/{run['id']}")).json()
    assert got["summary"]["cases"] == shipped.cases


async def test_starting_a_run_needs_the_csrf_token(web: Api, alice: WebUser) -> None:
    mine = await persona(web)
    response = await alice.client.post(f"/v1/personas/{mine}/tests/run", json={"suite": SUITE})
    assert response.status_code == 403
    listed = (await alice.api("GET", "/v1/test-runs")).json()
    assert listed["count"] == 0


async def test_a_bad_suite_names_the_field_for_the_form(web: Api, alice: WebUser) -> None:
    mine = await persona(web)
    await alice.page(f"/tests?persona={mine}")
    response = await alice.api("POST", f"/v1/personas/{mine}/tests/run", json={
        "suite_yaml": "name: x\ncases:\n  - name: a\n    turns: [hi]\n    expect: []\n"})
    assert response.status_code == 422
    paths = [issue["path"] for issue in response.json()["error"]["details"]["errors"]]
    assert paths and all(path.startswith("suite_yaml") for path in paths)
