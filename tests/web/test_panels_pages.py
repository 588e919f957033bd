"""The panels pages over HTTP: the form, the evaluation page, and the API calls they make.

The app's model is a loopback OpenAI-protocol server steered by ``Judges`` (a known
score per persona), so every card and aggregate on the page can be checked exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from personae.web.routes.panels import CHART_BAR, chart_bars, clock
from tests.support.api import Api
from tests.support.panel_api import ADVERTISER, GENZ, SRT, TEXT, PanelApi, serve_panels
from tests.support.web import HTML, WebUser

UPLOAD_LIMIT = 4096
CELL = re.compile(r'<article class="card cell (\w+)" data-status="\w+" data-persona="([^"]+)"')
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>")


@pytest.fixture
async def papi(sqlite_url: str, tmp_path: Path) -> AsyncIterator[PanelApi]:
    """The app with the samples, a steerable model and a small upload bound; one job at
    a time, so a cancel finds cells not started yet."""
    async for harness in serve_panels(sqlite_url, tmp_path, max_upload_bytes=UPLOAD_LIMIT,
                                      panel_concurrency=1):
        yield harness
        harness.server.hang = False  # let held requests end, so the queue drains


@pytest.fixture
def web(papi: PanelApi) -> Api:
    """The signed-in browsers of tests/web/conftest.py, on the panel app."""
    return papi.api


async def finished(papi: PanelApi, who: str = "alice", **body: Any) -> str:
    """An evaluation run to the end; its id."""
    body.setdefault("personas", [GENZ, ADVERTISER])
    created = await papi.evaluate(who, content=body.pop("content", TEXT),
                                  sentences_per_segment=2, **body)
    await papi.drain()
    return str(created["id"])


def cells(page: str) -> list[tuple[str, str]]:
    """(status, persona id) of every card on an evaluation page."""
    return CELL.findall(page)


# -- the form ----------------------------------------------------------------------------

async def test_the_form_offers_usable_personas_and_saved_panels(papi: PanelApi,
                                                               alice: WebUser) -> None:
    await papi.panel(name="morning-show")
    page = (await alice.page("/panels")).text
    for persona in (GENZ, ADVERTISER, "tina-kulkarni"):
        assert f'name="personas" value="{persona}"' in page
    assert "Gen Z Listener" in page
    assert re.search(r'<option value="[^"]+">morning-show \(2 personas\)</option>', page)
    assert 'aria-current="page">Panels<' in page


async def test_archived_and_other_users_private_personas_are_not_offered(
        papi: PanelApi, alice: WebUser) -> None:
    ids = {}
    for who in ("alice", "bob"):
        created = await papi.client.post("/v1/personas", headers=papi.as_(who), json={
            "definition": {"id": "critic", "name": f"{who}'s critic",
                           "system_prompt": "You judge."}, "visibility": "private"})
        assert created.status_code == 201, created.text
        ids[who] = created.json()["id"]
    offered = (await alice.page("/panels")).text
    assert f'value="{ids["alice"]}"' in offered and f'value="{ids["bob"]}"' not in offered
    archived = await papi.client.post(f"/v1/personas/{ids['alice']}/archive",
                                      headers=papi.as_("alice"))
    assert archived.status_code == 200, archived.text
    assert f'value="{ids["alice"]}"' not in (await alice.page("/panels")).text


async def test_no_saved_panel_disables_that_choice(alice: WebUser) -> None:
    page = (await alice.page("/panels")).text
    assert re.search(r'value="panel" disabled>', page)
    assert "No saved panels yet" in page


async def test_the_form_states_the_upload_bound(alice: WebUser) -> None:
    page = (await alice.page("/panels")).text
    assert f'data-upload-limit="{UPLOAD_LIMIT}"' in page
    assert f"up to {UPLOAD_LIMIT:,} bytes" in page


async def test_a_persona_named_like_a_script_is_text_in_the_form(papi: PanelApi,
                                                                 alice: WebUser) -> None:
    created = await papi.client.post("/v1/personas", headers=papi.as_("alice"), json={
        "definition": {"id": "xss-judge", "name": "<script>alert(1)</script>",
                       "system_prompt": "You judge."}})
    assert created.status_code == 201, created.text
    page = (await alice.page("/panels")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


async def test_a_visitor_is_sent_to_sign_in(visitor: WebUser) -> None:
    response = await visitor.client.get("/panels", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fpanels"


# -- starting through the cookie-authenticated API ---------------------------------------

async def test_start_as_the_page_does_then_see_it_listed(papi: PanelApi,
                                                         alice: WebUser) -> None:
    await alice.page("/panels")
    response = await alice.api("POST", "/v1/evaluations", data={
        "title": "Morning <b>show</b>", "content": TEXT, "personas": [GENZ, ADVERTISER],
        "sentences_per_segment": "2", "format": ""})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["progress"]["total"] == 4
    await papi.drain()
    listed = (await alice.page("/panels")).text
    assert f'<a href="/panels/{created["id"]}">Morning &lt;b&gt;show&lt;/b&gt;</a>' in listed
    assert '<span class="badge completed">completed</span>' in listed
    assert "Gen Z Listener, Brand Advertiser" in listed


async def test_start_without_the_csrf_token_is_refused(alice: WebUser) -> None:
    await alice.page("/panels")
    response = await alice.client.post("/v1/evaluations", data={
        "content": TEXT, "personas": GENZ})
    assert response.status_code == 403, response.text
    assert (await alice.api("GET", "/v1/evaluations")).json()["count"] == 0


async def test_start_with_a_saved_panel(papi: PanelApi, alice: WebUser) -> None:
    panel = await papi.panel()
    await alice.page("/panels")
    response = await alice.api("POST", "/v1/evaluations", data={
        "content": TEXT, "panel": panel["id"], "sentences_per_segment": "2"})
    assert response.status_code == 202, response.text
    await papi.drain()
    page = (await alice.page(f"/panels/{response.json()['id']}")).text
    assert len(cells(page)) == 4


async def test_an_upload_over_the_bound_is_refused_naming_it(alice: WebUser) -> None:
    await alice.page("/panels")
    big = ("A sentence that repeats. " * 400).encode()
    assert len(big) > UPLOAD_LIMIT
    response = await alice.api("POST", "/v1/evaluations", data={"personas": GENZ},
                               files={"file": ("long.txt", big, "text/plain")})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and f"{UPLOAD_LIMIT:,} bytes" in error["message"]
    not_text = await alice.api("POST", "/v1/evaluations", data={"personas": GENZ},
                               files={"file": ("a.txt", "Café.".encode("latin-1"))})
    assert not_text.status_code == 400
    assert not_text.json()["error"]["details"] == {"field": "file"}  # placed by the page


async def test_an_srt_upload_shows_its_times(papi: PanelApi, alice: WebUser) -> None:
    await alice.page("/panels")
    response = await alice.api("POST", "/v1/evaluations", data={"personas": GENZ},
                               files={"file": ("episode.srt", SRT.encode(), "text/plain")})
    assert response.status_code == 202, response.text
    await papi.drain()
    page = (await alice.page(f"/panels/{response.json()['id']}")).text
    assert "<h1>episode.srt</h1>" in page
    assert "0:01.0–0:02.5" in page and "0:03.0–0:04.2" in page
    assert len(cells(page)) == 2


# -- the evaluation page -----------------------------------------------------------------

async def test_a_finished_evaluation_shows_every_card(papi: PanelApi, alice: WebUser) -> None:
    eid = await finished(papi)
    page = (await alice.page(f"/panels/{eid}")).text
    assert cells(page) == [("done", GENZ), ("done", ADVERTISER)] * 2
    assert page.count("Gen Z Listener gives it a 2") == 2
    assert page.count("Brand Advertiser gives it a 4") == 2
    assert page.count("<dt>Topic</dt><dd>coffee</dd>") == 4
    assert page.count("<dt>Tone</dt><dd>casual</dd>") == 4
    assert 'value="4"' in page and 'max="4"' in page  # the bar at its end
    assert f'href="/v1/evaluations/{eid}/export?format=csv"' in page
    assert f'href="/v1/evaluations/{eid}/export?format=json"' in page
    assert 'id="rerun-failed"' not in page and 'id="cancel-evaluation"' not in page


async def test_aggregates_as_a_chart_and_a_table(papi: PanelApi, alice: WebUser) -> None:
    eid = await finished(papi)
    page = (await alice.page(f"/panels/{eid}")).text
    assert "<title>Gen Z Listener: mean 2.0 of 5</title>" in page
    assert "<title>Brand Advertiser: mean 4.0 of 5</title>" in page
    widths = re.findall(r'<rect class="bar" [^>]*width="([\d.]+)"', page)
    assert [float(w) for w in widths] == [CHART_BAR * 0.25, CHART_BAR * 0.75]  # on 1..5
    row = re.search(rf'<tr data-persona="{GENZ}">(.*?)</tr>', page, re.S)
    assert row and re.findall(r"<td>([^<]*)</td>", row.group(1)) == ["2.0", "2", "0", "0",
                                                                     "2×2"]
    assert "<h3>By topic</h3>" in page and "<th scope=\"row\">coffee</th>" in page


async def test_failed_cells_are_marked_as_failures(papi: PanelApi, alice: WebUser) -> None:
    papi.judges.scores[GENZ] = {"score": 99, "opinion": "off the scale"}
    eid = await finished(papi)
    page = (await alice.page(f"/panels/{eid}")).text
    assert cells(page) == [("failed", GENZ), ("done", ADVERTISER)] * 2
    assert page.count('<span class="badge failed">Failed</span>') == 2
    errors = re.findall(r'<p class="cell-error">Error: ([^<]*)</p>', page)
    assert len(errors) == 2 and all("does not match the schema" in e for e in errors)
    assert "off the scale" not in page
    assert "<title>Gen Z Listener: no score</title>" in page
    assert 'id="rerun-failed"' in page


async def test_rerun_failed_cells_through_the_cookie_api(papi: PanelApi,
                                                         alice: WebUser) -> None:
    papi.judges.scores[GENZ] = {"score": 99, "opinion": "x"}
    eid = await finished(papi)
    await alice.page(f"/panels/{eid}")
    papi.judges.scores[GENZ] = 3
    rerun = await alice.api("POST", f"/v1/evaluations/{eid}/rerun",
                            json={"include_cancelled": False})
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["status"] == "running"
    await papi.drain()
    page = (await alice.page(f"/panels/{eid}")).text
    assert cells(page) == [("done", GENZ), ("done", ADVERTISER)] * 2
    assert 'id="rerun-failed"' not in page and "Gen Z Listener gives it a 3" in page


async def test_segment_text_and_opinions_are_escaped(papi: PanelApi, alice: WebUser) -> None:
    papi.judges.scores[ADVERTISER] = {"score": 5, "opinion": "<script>alert('op')</script>"}
    eid = await finished(papi, content="Buy now. <script>alert('seg')</script> Today only.",
                         personas=[ADVERTISER])
    page = (await alice.page(f"/panels/{eid}")).text
    assert str(escape("<script>alert('seg')</script>")) in page
    assert str(escape("<script>alert('op')</script>")) in page
    assert "<script>alert" not in page


async def test_pages_carry_no_inline_code(papi: PanelApi, alice: WebUser) -> None:
    eid = await finished(papi)
    for path in ("/panels", f"/panels/{eid}"):
        page = (await alice.page(path)).text
        for attrs in SCRIPT_TAG.findall(page):
            assert "src=" in attrs or 'type="application/json"' in attrs, (path, attrs)
        assert not re.search(r"\son\w+=|\sstyle=", page), path
        assert page.count("<h1") == 1


async def test_a_running_evaluation_shows_live_progress(papi: PanelApi,
                                                        alice: WebUser) -> None:
    papi.server.hang = True
    created = await papi.evaluate(content=TEXT, personas=[GENZ], classify=False,
                                  sentences_per_segment=2)
    page = (await alice.page(f"/panels/{created['id']}")).text
    assert re.search(r'<progress id="evaluation-progress" max="2" value="0"', page)
    assert 'aria-live="polite"' in page and "0 of 2 cells finished" in page
    info = re.search(r'<script type="application/json" id="panel-evaluation">([^<]*)</script>',
                     page)
    assert info and json.loads(info.group(1)) == {"id": created["id"], "status": "running"}
    assert 'id="cancel-evaluation"' in page and cells(page) == []
    assert "export?format=csv" not in page
    cancel = await alice.api("POST", f"/v1/evaluations/{created['id']}/cancel")
    assert cancel.status_code == 200, cancel.text


async def test_a_cancelled_evaluation_offers_to_rerun_cancelled_cells(
        papi: PanelApi, alice: WebUser) -> None:
    papi.server.hang = True
    created = await papi.evaluate(content=TEXT, personas=[GENZ], classify=False,
                                  sentences_per_segment=2)
    await alice.page(f"/panels/{created['id']}")
    assert (await alice.api("POST", f"/v1/evaluations/{created['id']}/cancel")).is_success
    papi.server.hang = False
    await papi.drain()
    page = (await alice.page(f"/panels/{created['id']}")).text
    assert '<span class="badge cancelled" id="evaluation-status">cancelled</span>' in page
    assert 'id="rerun-failed"' in page and 'id="rerun-cancelled"' in page
    statuses = [status for status, _ in cells(page)]
    assert "cancelled" in statuses and set(statuses) <= {"cancelled", "done"}
    assert '<span class="badge cancelled">Cancelled</span>' in page


async def test_another_users_evaluation_is_a_404_page(papi: PanelApi, alice: WebUser,
                                                      bob: WebUser) -> None:
    eid = await finished(papi)
    page = await bob.page(f"/panels/{eid}", expect=404)
    assert "text/html" in page.headers["content-type"]
    assert "Not found" in page.text and "Gen Z Listener gives it" not in page.text
    assert f'href="/panels/{eid}"' not in (await bob.page("/panels")).text
    export = await bob.client.get(f"/v1/evaluations/{eid}/export?format=csv")
    assert export.status_code == 404
    assert (await bob.api("POST", f"/v1/evaluations/{eid}/rerun")).status_code == 404
    await alice.page(f"/panels/{eid}")
    await alice.page("/panels/no-such-evaluation", expect=404)


async def test_export_downloads_with_the_cookie(papi: PanelApi, alice: WebUser) -> None:
    eid = await finished(papi)
    await alice.page(f"/panels/{eid}")
    csv_file = await alice.client.get(f"/v1/evaluations/{eid}/export?format=csv")
    assert csv_file.status_code == 200
    assert csv_file.headers["content-disposition"] == (
        f'attachment; filename="evaluation-{eid}.csv"')
    assert len(csv_file.text.strip().splitlines()) == 1 + 4
    as_json = await alice.client.get(f"/v1/evaluations/{eid}/export?format=json")
    assert as_json.status_code == 200 and len(as_json.json()["segments"]) == 2


# -- the page's own figures --------------------------------------------------------------

def test_chart_bars_follow_the_scale() -> None:
    aggregates = {"personas": {"a": {"name": "A", "mean": 0.0}, "b": {"name": "B", "mean": 7.5},
                               "c": {"name": "C", "mean": None}}}
    bars = chart_bars(aggregates, {"scale_min": 0, "scale_max": 10})
    assert [(b.name, b.width) for b in bars] == [("A", 0.0), ("B", CHART_BAR * 0.75),
                                                 ("C", 0.0)]
    assert [b.y for b in bars] == sorted({b.y for b in bars}) and bars[0].y == 0


def test_clock_formats_subtitle_times() -> None:
    assert (clock(None), clock(2500), clock(61_000), clock(3_725_400)) == (
        "", "0:02.5", "1:01.0", "1:02:05.4")
