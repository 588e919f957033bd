"""``/v1/evaluations`` over HTTP: content in, one card per persona x segment out.

The model is a real loopback server (``FakeOpenAIServer``) answering each persona
with a known score, so results and aggregates can be checked exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.api.routes import evaluations as routes
from personae.errors import ValidationFailed
from personae.panels.report import CSV_COLUMNS
from personae.panels.service import parse_rubric
from tests.support.panel_api import (
    ADVERTISER,
    GENZ,
    SRT,
    TEXT,
    PanelApi,
    cards,
    serve_panels,
    sse_events,
)


@pytest.fixture
async def slow_papi(database_url: str, tmp_path: Path) -> AsyncIterator[PanelApi]:
    """One job at a time, so a cancel finds most cells still pending."""
    async for harness in serve_panels(database_url, tmp_path, panel_concurrency=1):
        yield harness


async def test_text_with_a_panel(papi: PanelApi) -> None:
    await papi.panel()
    genz = (await papi.client.get(f"/v1/personas/{GENZ}", headers=papi.as_("alice"))).json()
    created = await papi.evaluate(content=TEXT, panel="listeners", sentences_per_segment=2,
                                  title="Coffee talk")
    eid = created["id"]
    assert created["status"] == "running"
    assert created["title"] == "Coffee talk" and created["content_format"] == "text"
    assert [p["id"] for p in created["personas"]] == [GENZ, ADVERTISER]
    assert created["progress"]["total"] == 4

    await papi.drain()
    got = (await papi.client.get(f"/v1/evaluations/{eid}", headers=papi.as_("alice"))).json()
    assert got["status"] == "completed" and got["finished_at"] is not None
    assert got["progress"]["cells"]["done"] == 4 and got["progress"]["finished"] == 4

    results = await papi.results(eid)
    assert [s["text"] for s in results["segments"]] == [
        "Coffee is the best start to any morning. I drink three cups before noon.",
        "My dentist does not agree with me. She says tea is kinder to teeth."]
    for segment in results["segments"]:
        assert segment["classification"] == {"status": "done", "topic": "coffee",
                                              "tone": "casual", "error": None}
        assert [c["persona_id"] for c in segment["cards"]] == [GENZ, ADVERTISER]
        for card in segment["cards"]:
            assert card["status"] == "done" and card["error"] is None
            assert 1 <= card["score"] <= 5
            assert card["opinion"].startswith(card["persona_name"])
        assert segment["cards"][0]["persona_version"] == genz["version"]
        assert [c["score"] for c in segment["cards"]] == [2, 4]

    aggregates = results["aggregates"]
    assert aggregates["personas"][GENZ] == {
        "name": "Gen Z Listener", "version": genz["version"], "mean": 2.0, "scored": 2,
        "distribution": {"2": 2}, "failed": 0, "pending": 0}
    assert aggregates["personas"][ADVERTISER]["mean"] == 4.0
    assert aggregates["personas"][ADVERTISER]["distribution"] == {"4": 2}
    assert aggregates["topics"]["coffee"]["mean"] == 3.0
    assert aggregates["topics"]["coffee"]["segments"] == 2
    assert aggregates["tones"]["casual"]["by_persona"] == {ADVERTISER: 4.0, GENZ: 2.0}
    alone = await papi.client.get(f"/v1/evaluations/{eid}/aggregates",
                                  headers=papi.as_("alice"))
    assert alone.json() == aggregates

    listed = (await papi.client.get("/v1/evaluations", headers=papi.as_("alice"))).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == eid
    running = await papi.client.get("/v1/evaluations?status=running",
                                    headers=papi.as_("alice"))
    assert running.json()["count"] == 0
    bad = await papi.client.get("/v1/evaluations?status=weird", headers=papi.as_("alice"))
    assert bad.status_code == 422


async def test_versions_are_pinned_when_created(papi: PanelApi) -> None:
    genz = (await papi.client.get(f"/v1/personas/{GENZ}", headers=papi.as_("admin"))).json()
    created = await papi.evaluate(content=TEXT, personas=[GENZ], classify=False)
    changed = await papi.client.patch(f"/v1/personas/{GENZ}", json={
        "definition": {"description": "changed while the panel ran"},
        "base_version": genz["version"]}, headers=papi.as_("admin"))
    assert changed.status_code == 200, changed.text
    await papi.drain()
    results = await papi.results(created["id"])
    assert {c["persona_version"] for c in cards(results)} == {genz["version"]}
    assert results["personas"][0]["version"] == genz["version"]


async def test_srt_and_json_segments_keep_times(papi: PanelApi) -> None:
    srt = await papi.evaluate(content=SRT, personas=[GENZ], classify=False)
    assert srt["content_format"] == "srt"
    timed = [{"text": "First bit.", "start": 1.5, "end": 2},
             {"text": "Second bit.", "start_ms": 2500, "end_ms": 4000}, "Untimed bit."]
    as_json = await papi.evaluate(content=json.dumps(timed), format="json", personas=[GENZ],
                                  classify=False)
    await papi.drain()
    segments = (await papi.results(srt["id"]))["segments"]
    assert [(s["text"], s["start_ms"], s["end_ms"]) for s in segments] == [
        ("Hello there.", 1000, 2500), ("Welcome to the show.", 3000, 4250)]
    assert segments[0]["classification"]["status"] == "skipped"
    segments = (await papi.results(as_json["id"]))["segments"]
    assert [(s["start_ms"], s["end_ms"]) for s in segments] == [
        (1500, 2000), (2500, 4000), (None, None)]
    assert all(len(s["cards"]) == 1 and s["cards"][0]["score"] == 2 for s in segments)


async def test_multipart_upload(papi: PanelApi) -> None:
    response = await papi.client.post(
        "/v1/evaluations", headers=papi.as_("alice"),
        files={"file": ("episode-1.srt", SRT.encode(), "application/x-subrip")},
        data={"personas": f"{GENZ}, {ADVERTISER}", "classify": "false",
              "rubric": json.dumps({"scale_min": 0, "scale_max": 10})})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/evaluations/{response.json()['id']}"
    created = response.json()
    assert (created["title"], created["content_format"]) == ("episode-1.srt", "srt")
    assert created["rubric"]["scale_max"] == 10 and created["classify"] is False
    assert created["progress"]["total"] == 4
    await papi.drain()
    assert len(cards(await papi.results(created["id"]))) == 4
    missing = await papi.client.post("/v1/evaluations", headers=papi.as_("alice"),
                                     data={"personas": GENZ})
    assert missing.status_code == 400 and "'file'" in missing.json()["error"]["message"]
    latin = await papi.client.post("/v1/evaluations", headers=papi.as_("alice"),
                                   files={"file": ("a.txt", "Café olé.".encode("latin-1"))},
                                   data={"personas": GENZ})
    assert latin.status_code == 400 and "UTF-8" in latin.json()["error"]["message"]


async def test_bad_requests(papi: PanelApi) -> None:
    async def post(expected: int, **kwargs: object) -> dict:
        kwargs.setdefault("headers", papi.as_("alice"))
        response = await papi.client.post("/v1/evaluations", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == expected, response.text
        return response.json()["error"]

    assert "empty" in (await post(400, json={"content": "  \n ", "personas": [GENZ]}))[
        "message"]
    assert "panel" in (await post(400, json={"content": TEXT}))["message"]
    assert "nobody" in (await post(400, json={"content": TEXT, "personas": ["nobody"]}))[
        "message"]
    assert "must be JSON" in (await post(400, content=b"{not json",
                                         headers={**papi.as_("alice"),
                                                  "content-type": "application/json"}))[
        "message"]
    error = await post(422, json={"content": TEXT, "personas": [GENZ], "colour": "red"})
    assert error["details"]["errors"] == [{"path": "colour", "message": "is not a known field"}]
    error = await post(422, json={"content": TEXT, "personas": [GENZ],
                                  "rubric": {"scale_min": 4, "scale_max": 2}})
    assert error["details"]["errors"][0]["path"] == "rubric"
    error = await post(400, json={"content": TEXT, "personas": [GENZ],
                                  "sentences_per_segment": 0})
    assert "sentences_per_segment" in error["message"]
    error = await post(404, json={"content": TEXT, "panel": "no-such-panel"})
    assert error["code"] == "not_found"
    assert (await papi.client.get("/v1/evaluations", headers=papi.as_("alice"))).json()[
        "count"] == 0


async def test_failed_cells_then_rerun(papi: PanelApi) -> None:
    papi.judges.scores[GENZ] = {"score": 99, "opinion": "x"}
    created = await papi.evaluate(content=TEXT, personas=[GENZ, ADVERTISER],
                                  sentences_per_segment=2)
    await papi.drain()
    results = await papi.results(created["id"])
    assert results["status"] == "completed"
    assert results["progress"]["cells"]["failed"] == 2
    before = {(c["persona_id"], i): c for i, s in enumerate(results["segments"])
              for c in s["cards"]}
    for (persona, _), card in before.items():
        if persona == GENZ:
            assert card["status"] == "failed" and card["score"] is None
            assert card["attempts"] == 3
            assert "does not match the schema" in card["error"]
        else:
            assert (card["status"], card["score"], card["attempts"]) == ("done", 4, 1)
    stats = results["aggregates"]["personas"][GENZ]
    assert (stats["failed"], stats["scored"], stats["mean"], stats["distribution"]) == (
        2, 0, None, {})
    assert results["aggregates"]["topics"]["coffee"]["mean"] == 4.0  # failed cells left out

    papi.judges.scores[GENZ] = 3
    rerun = await papi.client.post(f"/v1/evaluations/{created['id']}/rerun",
                                   headers=papi.as_("alice"))
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["status"] == "running" and rerun.json()["cells"]["failed"] == 0
    await papi.drain()
    after = await papi.results(created["id"])
    assert after["status"] == "completed"
    assert len(cards(after)) == 4
    for i, segment in enumerate(after["segments"]):
        assert [c["persona_id"] for c in segment["cards"]] == [GENZ, ADVERTISER]
        genz, advertiser = segment["cards"]
        assert (genz["status"], genz["score"], genz["error"]) == ("done", 3, None)
        assert advertiser == before[(ADVERTISER, i)]  # untouched
    assert after["aggregates"]["personas"][GENZ]["mean"] == 3.0


async def test_upstream_failures_fail_cells(papi: PanelApi) -> None:
    papi.server.fail_always(500)
    created = await papi.evaluate(content=TEXT, personas=[GENZ, ADVERTISER],
                                  sentences_per_segment=2)
    await papi.drain()
    results = await papi.results(created["id"])
    assert results["status"] == "completed"
    for segment in results["segments"]:
        assert segment["classification"]["status"] == "failed"
        assert segment["classification"]["topic"] is None
        assert segment["classification"]["error"]
        for card in segment["cards"]:
            assert card["status"] == "failed" and card["score"] is None
            assert card["opinion"] is None
            assert card["error"].startswith("fake"), card["error"]
    assert results["aggregates"]["personas"][GENZ]["mean"] is None
    assert results["aggregates"]["topics"] == {}


async def test_cancel_and_rerun_cancelled(slow_papi: PanelApi) -> None:
    papi = slow_papi
    papi.server.latency = 0.3
    text = " ".join(f"Sentence number {n} is here." for n in range(4))
    created = await papi.evaluate(content=text, personas=[GENZ, ADVERTISER], classify=False,
                                  sentences_per_segment=1)
    eid = created["id"]
    busy = await papi.client.post(f"/v1/evaluations/{eid}/rerun", headers=papi.as_("alice"))
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
    cancelled = await papi.client.post(f"/v1/evaluations/{eid}/cancel",
                                       headers=papi.as_("alice"))
    assert cancelled.status_code == 200
    progress = cancelled.json()
    assert progress["status"] == "cancelled"
    assert progress["cells"]["cancelled"] >= 6 and progress["cells"]["pending"] == 0
    await papi.drain()
    results = await papi.results(eid)
    assert results["status"] == "cancelled"
    statuses = [c["status"] for c in cards(results)]
    assert len(statuses) == 8 and set(statuses) <= {"done", "cancelled"}
    assert statuses.count("cancelled") >= 6

    papi.server.latency = 0
    again = await papi.client.post(f"/v1/evaluations/{eid}/rerun?include_cancelled=true",
                                   headers=papi.as_("alice"))
    assert again.status_code == 200 and again.json()["status"] == "running"
    await papi.drain()
    done = await papi.results(eid)
    assert done["status"] == "completed"
    assert [c["status"] for c in cards(done)] == ["done"] * 8


async def test_another_users_evaluation_is_404(papi: PanelApi) -> None:
    eid = (await papi.evaluate(content=TEXT, personas=[GENZ]))["id"]
    await papi.drain()
    for method, path in (("GET", ""), ("GET", "/results"), ("GET", "/aggregates"),
                         ("GET", "/export"), ("GET", "/export?format=json"),
                         ("POST", "/cancel"), ("POST", "/rerun"), ("POST", "/resume"),
                         ("GET", "/events"), ("DELETE", "")):
        response = await papi.client.request(method, f"/v1/evaluations/{eid}{path}",
                                             headers=papi.as_("bob"))
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"
    listed = (await papi.client.get("/v1/evaluations", headers=papi.as_("bob"))).json()
    assert listed["count"] == 0 and listed["data"] == []
    assert (await papi.results(eid))["status"] == "completed"  # still alice's
    deleted = await papi.client.delete(f"/v1/evaluations/{eid}", headers=papi.as_("alice"))
    assert deleted.status_code == 204
    gone = await papi.client.get(f"/v1/evaluations/{eid}", headers=papi.as_("alice"))
    assert gone.status_code == 404


async def test_export_csv_and_json(papi: PanelApi) -> None:
    eid = (await papi.evaluate(content=SRT, personas=[GENZ, ADVERTISER]))["id"]
    await papi.drain()
    response = await papi.client.get(f"/v1/evaluations/{eid}/export?format=csv",
                                     headers=papi.as_("alice"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == \
        f'attachment; filename="evaluation-{eid}.csv"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(CSV_COLUMNS)
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(body) == 4
    assert [(r["segment_index"], r["persona_id"], r["score"]) for r in body] == [
        ("0", ADVERTISER, "4"), ("0", GENZ, "2"), ("1", ADVERTISER, "4"), ("1", GENZ, "2")]
    assert body[0]["start_ms"] == "1000" and body[0]["topic"] == "coffee"
    assert body[2]["text"] == "Welcome to the show."

    response = await papi.client.get(f"/v1/evaluations/{eid}/export?format=json",
                                     headers=papi.as_("alice"))
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == \
        f'attachment; filename="evaluation-{eid}.json"'
    assert response.json() == await papi.results(eid)
    unknown = await papi.client.get(f"/v1/evaluations/{eid}/export?format=xlsx",
                                    headers=papi.as_("alice"))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "unknown export format 'xlsx'; use csv or json"


async def test_events_stream_progress_then_done(papi: PanelApi,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "EVENTS_INTERVAL", 0.01)
    papi.server.latency = 0.05
    eid = (await papi.evaluate(content=TEXT, personas=[GENZ, ADVERTISER]))["id"]
    async with papi.client.stream("GET", f"/v1/evaluations/{eid}/events",
                                  headers=papi.as_("alice")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await sse_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "done"
    assert set(kinds[:-1]) == {"progress"} and len(kinds) >= 3
    assert events[0][1]["status"] == "running"
    final = events[-1][1]
    assert final["status"] == "completed" and final["cells"]["done"] == final["total"] == 4
    assert events[-2][1] == final  # done repeats the last progress
    finished = [data["finished"] for _, data in events]
    assert finished == sorted(finished)
    async with papi.client.stream("GET", f"/v1/evaluations/{eid}/events",
                                  headers=papi.as_("alice")) as response:
        assert [kind for kind, _ in await sse_events(response)] == ["progress", "done"]


def test_service_rubric_error_path_has_no_trailing_dot() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_rubric({"scale_min": 4, "scale_max": 2})
    assert [issue.path for issue in caught.value.issues] == ["rubric"]


async def test_resume_queues_lost_work_once(papi: PanelApi) -> None:
    eid = (await papi.evaluate(content=TEXT, personas=[GENZ]))["id"]
    await papi.drain()
    finished = await papi.client.post(f"/v1/evaluations/{eid}/resume",
                                      headers=papi.as_("alice"))
    assert finished.status_code == 200
    assert (finished.json()["status"], finished.json()["queued"]) == ("completed", 0)
    store = papi.api.runtime.panels.store
    await store.reopen(eid, ("done",))  # as if the queue had lost these jobs
    calls = papi.server.chat_count
    resumed = (await papi.client.post(f"/v1/evaluations/{eid}/resume",
                                      headers=papi.as_("alice"))).json()
    assert resumed["status"] == "running" and resumed["queued"] == resumed["total"]
    await papi.drain()
    assert (await papi.results(eid))["status"] == "completed"
    assert papi.server.chat_count - calls == resumed["total"]  # each cell scored once more
