"""``/v1/writing`` through the real app on a real database, with the scripted model:
create (201, and as server-sent progress), validate, optimize and draft (whole and
streamed), and bad input answered with a clear 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from personae.providers.fake.scripted import ScriptedLLM
from tests.support.api import Api
from tests.support.panel_api import sse_events
from tests.support.writing_samples import SAMPLES, synthesis_answer

POST = "A quick note on shipping: small releases teach us more than polished ones."


def model(api: Api) -> ScriptedLLM:
    llm = api.runtime.providers.get("model")
    assert isinstance(llm, ScriptedLLM)
    return llm


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "Sam Lee", "samples": [{"text": t} for t in SAMPLES],
            "audience": "engineers", "topics": ["shipping"], **fields}


async def created(api: Api, who: str = "alice") -> dict[str, Any]:
    model(api).queue(synthesis_answer())
    response = await api.client.post("/v1/writing/personas", json=body(), headers=api.as_(who))
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_create_answers_201_with_the_persona_as_personas_show_it(wapi: Api) -> None:
    persona = await created(wapi)
    assert persona["id"] == "alice/sam-lee" and persona["version"] == 1
    assert persona["definition"]["writing"]["synthesis"]["status"] == "ok"
    same = await wapi.client.get(f"/v1/personas/{persona['id']}", headers=wapi.as_("alice"))
    assert same.json() == persona
    mine = await wapi.client.get("/v1/writing/personas?user=me", headers=wapi.as_("alice"))
    assert [p["id"] for p in mine.json()["data"]] == [persona["id"]]


async def test_create_streams_progress_then_the_persona(wapi: Api) -> None:
    model(wapi).queue(synthesis_answer())
    async with wapi.client.stream("POST", "/v1/writing/personas", json=body(), headers={
            **wapi.as_("alice"), "Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await sse_events(response)
    names = [name for name, _ in events]
    assert names[-1] == "persona" and set(names[:-1]) == {"progress"}
    messages = [data["message"] for name, data in events if name == "progress"]
    assert "synthesis attempt 1 of 3" in messages and messages[-1] == "stored version 1"
    assert events[-1][1]["version"] == 1


async def test_samples_put_makes_a_new_version_and_reads_back(wapi: Api) -> None:
    persona = await created(wapi)
    url = f"/v1/writing/personas/{persona['id']}/samples"
    model(wapi).queue(synthesis_answer())
    changed = [{"text": t} for t in [*SAMPLES[:3], SAMPLES[3] + " Then we wrote a checklist."]]
    response = await wapi.client.put(url, json={"samples": changed}, headers=wapi.as_("alice"))
    assert response.status_code == 200 and response.json()["version"] == 2
    read = await wapi.client.get(url, headers=wapi.as_("alice"))
    assert [s["text"] for s in read.json()["data"]] == [s["text"] for s in changed]


async def test_validate_shows_meters_and_a_style_report(wapi: Api) -> None:
    persona = await created(wapi)
    response = await wapi.client.post("/v1/writing/x/validate", json={
        "persona": persona["id"], "text": POST}, headers=wapi.as_("alice"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["meets_limits"] is True
    assert any(m["shown"].endswith("/280") for m in report["meters"])
    assert report["style"]["distance"]["explanation"]


async def test_optimize_returns_the_best_attempt_and_streams_events(wapi: Api) -> None:
    persona = await created(wapi)
    model(wapi).queue(POST, POST)
    whole = await wapi.client.post("/v1/writing/x/optimize", json={
        "persona": persona["id"], "text": POST + " " + POST, "max_attempts": 1},
        headers=wapi.as_("alice"))
    assert whole.status_code == 200, whole.text
    assert {"best", "text", "report", "attempts", "meets_limits", "reason"} <= whole.json().keys()
    async with wapi.client.stream("POST", "/v1/writing/x/optimize", json={
            "persona": persona["id"], "text": POST, "max_attempts": 1, "stream": True},
            headers=wapi.as_("alice")) as response:
        events = await sse_events(response)
    names = [name for name, _ in events]
    assert names[-1] == "done" and "scored" in names
    assert set(names) <= {"attempt", "delta", "scored", "done"}


async def test_draft_streams_a_new_post(wapi: Api) -> None:
    persona = await created(wapi)
    model(wapi).queue(POST)
    async with wapi.client.stream("POST", "/v1/writing/linkedin/draft", json={
            "persona": persona["id"], "topic": "shipping small", "max_attempts": 1,
            "stream": True}, headers=wapi.as_("alice")) as response:
        events = await sse_events(response)
    assert events[-1][0] == "done" and POST in events[-1][1]["text"]
    assert ("attempt", {"number": 1}) in events


async def test_platforms_are_listed_and_an_unknown_one_is_404(wapi: Api) -> None:
    listed = await wapi.client.get("/v1/writing/platforms", headers=wapi.as_("bob"))
    assert {"x", "linkedin"} <= {p["id"] for p in listed.json()["data"]}
    unknown = await wapi.client.get("/v1/writing/platforms/myspace", headers=wapi.as_("bob"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    persona = await created(wapi)
    response = await wapi.client.post("/v1/writing/myspace/validate", json={
        "persona": persona["id"], "text": POST}, headers=wapi.as_("alice"))
    assert response.status_code == 404


@pytest.mark.parametrize(("payload", "status"), [
    (body(samples=[]), 422),
    (body(samples=[{"text": "word "}] * 201), 422),
    (body(samples=[{"text": "x" * 100_001}]), 413),
    (body(samples=[{"text": "Too short to measure."}]), 422),
    (body(max_attempts=0), 422),
    (body(max_attempts=6), 422),
])
async def test_bad_samples_get_a_clear_error(wapi: Api, payload: dict[str, Any],
                                             status: int) -> None:
    response = await wapi.client.post("/v1/writing/personas", json=payload,
                                      headers=wapi.as_("alice"))
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert model(wapi).requests == []


@pytest.mark.parametrize(("text", "status"), [("   ", 422), ("x" * 100_001, 413)])
async def test_bad_drafts_get_a_clear_error(wapi: Api, text: str, status: int) -> None:
    persona = await created(wapi)
    response = await wapi.client.post("/v1/writing/x/validate", json={
        "persona": persona["id"], "text": text}, headers=wapi.as_("alice"))
    assert response.status_code == status, response.text
    bad = await wapi.client.post("/v1/writing/x/optimize", json={
        "persona": persona["id"], "text": POST, "max_attempts": 9}, headers=wapi.as_("alice"))
    assert bad.status_code == 422


STREAMED = {"Accept": "text/event-stream"}
# Random code points (fixed, so the test is the same every run): no language at all
# (no control characters either: those are refused on their own, named).
NOISE = "".join(chr(c) for c in (0x20 + (n * 7919 + 104729) % 0x10FFDF for n in range(3000))
                if not 0xD800 <= c <= 0xDFFF and not 0x7F <= c <= 0x9F)
BMP_NOISE = "".join(chr(c) for c in (0x3000 + (n * 7919) % 0xC000 for n in range(3300))
                    if not 0xD800 <= c <= 0xDFFF)


@pytest.mark.parametrize("payload", [
    body(samples=[{"text": "Too short to measure, thirty words or so."}]),
    body(samples=[]),
    body(max_attempts=6),
    body(language="not a language"),
    body(model="nosuch/model"),
])
async def test_a_streamed_create_checks_its_input_before_the_stream(
        wapi: Api, payload: dict[str, Any]) -> None:
    response = await wapi.client.post("/v1/writing/personas", json=payload,
                                      headers={**wapi.as_("alice"), **STREAMED})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["message"]
    assert model(wapi).requests == []


async def test_a_streamed_create_of_a_taken_id_is_409_before_the_stream(wapi: Api) -> None:
    await created(wapi)
    response = await wapi.client.post("/v1/writing/personas", json=body(),
                                      headers={**wapi.as_("alice"), **STREAMED})
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


async def test_an_unknown_model_is_422_naming_the_known_ones(wapi: Api) -> None:
    response = await wapi.client.post("/v1/writing/personas", json=body(model="nosuch/model"),
                                      headers=wapi.as_("alice"))
    assert response.status_code == 422, response.text
    assert "nosuch" in response.text and "model" in response.json()["error"]["message"]
    assert (await wapi.client.get("/v1/writing/personas?user=me",
                                  headers=wapi.as_("alice"))).json()["count"] == 0
    embedded = await wapi.client.post("/v1/writing/personas",
                                      json=body(model="embedded/nosuch-model"),
                                      headers=wapi.as_("alice"))
    assert embedded.status_code == 422 and "known models" in embedded.text
    persona = await created(wapi)
    calls = len(model(wapi).requests)
    optimized = await wapi.client.post("/v1/writing/x/optimize", json={
        "persona": persona["id"], "text": POST, "model": "nosuch/model"},
        headers=wapi.as_("alice"))
    assert optimized.status_code == 422 and "known providers" in optimized.text
    draft = await wapi.client.post("/v1/writing/x/draft", json={
        "persona": persona["id"], "topic": "shipping", "model": "nosuch/model"},
        headers=wapi.as_("alice"))
    assert draft.status_code == 422, draft.text
    assert len(model(wapi).requests) == calls  # no model was asked


async def test_regenerate_says_when_no_new_version_was_made(wapi: Api) -> None:
    persona = await created(wapi)
    url = f"/v1/writing/personas/{persona['id']}/regenerate"
    model(wapi).queue(synthesis_answer())  # the same answer: the same definition
    same = await wapi.client.post(url, headers=wapi.as_("alice"))
    assert same.status_code == 200, same.text
    assert same.json()["version"] == 1 and same.headers["X-Persona-Changed"] == "false"
    model(wapi).queue(synthesis_answer("A lead who writes plainly."))
    fresh = await wapi.client.post(url, headers=wapi.as_("alice"))
    assert fresh.json()["version"] == 2 and fresh.headers["X-Persona-Changed"] == "true"


@pytest.mark.parametrize("noise", [NOISE, BMP_NOISE])
async def test_random_characters_are_not_a_persona(wapi: Api, noise: str) -> None:
    response = await wapi.client.post("/v1/writing/personas",
                                      json=body(samples=[{"text": noise}]),
                                      headers=wapi.as_("alice"))
    assert response.status_code == 422, response.text
    assert "do not read as writing" in response.text
    assert model(wapi).requests == []


@pytest.mark.parametrize("sample", [
    "मैंने इस हफ्ते नया फीचर जारी किया और पहले आंकड़े अच्छे लग रहे हैं। ग्राहक तेजी से "
    "सेटअप पूरा करते हैं और कम सवाल पूछते हैं। हमने छोटी टीम के साथ काम किया। " * 4,
    "今日は新しいプロジェクトについてお話しします。チームは小さいですが、毎週リリースして"
    "います。お客様の声を聞くことが一番大切だと思います。" * 16,
    "Esta semana lanzamos el nuevo flujo y los primeros números se ven bien. Los clientes "
    "terminan más rápido y hacen menos preguntas. Seguimos con el mismo equipo. " * 4,
])
async def test_real_writing_in_any_language_makes_a_persona(wapi: Api, sample: str) -> None:
    model(wapi).queue("not json", "not json", "not json")  # the synthesis may fail: stored
    response = await wapi.client.post("/v1/writing/personas",
                                      json=body(samples=[sample]),
                                      headers=wapi.as_("alice"))
    assert response.status_code == 201, response.text


async def test_samples_may_be_plain_strings_and_stream_must_be_a_boolean(wapi: Api) -> None:
    model(wapi).queue(synthesis_answer())
    response = await wapi.client.post("/v1/writing/personas", json=body(samples=list(SAMPLES)),
                                      headers=wapi.as_("alice"))
    assert response.status_code == 201, response.text
    for value in ("yes", 1, "true"):
        lax = await wapi.client.post("/v1/writing/x/optimize", json={
            "persona": response.json()["id"], "text": POST, "stream": value},
            headers=wapi.as_("alice"))
        assert lax.status_code == 422, lax.text
        lax = await wapi.client.post("/v1/writing/x/draft", json={
            "persona": response.json()["id"], "topic": "shipping", "stream": value},
            headers=wapi.as_("alice"))
        assert lax.status_code == 422, lax.text


async def test_a_streamed_samples_replace_checks_its_input_before_the_stream(
        wapi: Api) -> None:
    persona = await created(wapi)
    response = await wapi.client.put(
        f"/v1/writing/personas/{persona['id']}/samples",
        json={"samples": ["Too short to measure."]}, headers={**wapi.as_("alice"), **STREAMED})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")


async def test_an_id_in_another_namespace_is_403_before_a_stream_opens(wapi: Api) -> None:
    response = await wapi.client.post("/v1/writing/personas", json=body(id="alice/zzz"),
                                      headers={**wapi.as_("bob"), "Accept": "text/event-stream"})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["details"]["namespace"] == "bob/"
    assert model(wapi).requests == []


@pytest.mark.parametrize("character", ["\u0007", "\u009b"])  # NUL: 400 at the edge
async def test_a_control_character_in_a_sample_is_422_naming_it_before_any_work(
        wapi: Api, character: str) -> None:
    samples = [{"text": t} for t in SAMPLES]
    samples[2]["text"] = samples[2]["text"].replace("Small", "Small" + character)
    response = await wapi.client.post("/v1/writing/personas", json=body(samples=samples),
                                      headers=wapi.as_("alice"))
    assert response.status_code == 422, response.text
    text = response.text
    assert f"U+{ord(character):04X}" in text and "samples[2].text" in text
    assert model(wapi).requests == []


async def test_control_characters_in_drafts_and_topics_are_422_naming_the_field(
        wapi: Api) -> None:
    persona = await created(wapi)
    validate = await wapi.client.post("/v1/writing/x/validate", json={
        "persona": persona["id"], "text": POST + "\u001b[2J"}, headers=wapi.as_("alice"))
    assert validate.status_code == 422 and "U+001B" in validate.text
    drafted = await wapi.client.post("/v1/writing/x/draft", json={
        "persona": persona["id"], "topic": "shipping\u0085small"}, headers=wapi.as_("alice"))
    assert drafted.status_code == 422 and "U+0085" in drafted.text
    assert "topic" in drafted.json()["error"]["details"]["errors"][0]["path"]
    assert len(model(wapi).requests) == 1  # the synthesis only
