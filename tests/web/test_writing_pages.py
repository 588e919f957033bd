"""The writing studio over HTTP: the list and build form, one persona's draft desk, and
the API calls their script makes with the cookie and the page's CSRF token.

The app's model is the scripted fake: a test queues the synthesis answer it needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from personae.writing import platforms
from tests.support.api import Api, serve_app
from tests.support.panel_api import sse_events
from tests.support.web import WebUser
from tests.support.writing_samples import (
    SAMPLES,
    scripted_model,
    scripted_settings,
    synthesis_answer,
)

XSS = "<script>alert(1)</script>"
DESK_DATA = re.compile(r'<script type="application/json" id="writing-desk">(.*?)</script>', re.S)


@pytest.fixture
async def web(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app (keys needed) whose default model is the scripted fake, samples loaded."""
    async for harness in serve_app(scripted_settings(sqlite_url, tmp_path,
                                                     anonymous_loopback=False)):
        await harness.runtime.load_samples()
        yield harness


async def build(web: Api, who: str = "alice", name: str = "Sam Lee",
                answer: str | None = None, **fields: Any) -> dict[str, Any]:
    """A writing persona made through the API with ``who``'s key."""
    scripted_model(web.runtime.providers).queue(answer or synthesis_answer())
    response = await web.client.post("/v1/writing/personas", headers=web.as_(who), json={
        "name": name, "samples": [{"text": t} for t in SAMPLES], **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def desk_data(html: str) -> dict[str, Any]:
    found = DESK_DATA.search(html)
    assert found, "the desk page hands its script no data"
    return dict(json.loads(found.group(1)))


# -- the studio --------

async def test_the_studio_lists_only_your_writing_personas(web: Api, alice: WebUser,
                                                           bob: WebUser) -> None:
    persona = await build(web)
    page = (await alice.page("/writing")).text
    assert f'href="/writing/{persona["id"]}"' in page and "Sam Lee" in page
    assert f"{len(SAMPLES)} samples" in page and "voice synthesis: ok" in page
    assert 'id="writing-empty" hidden' in page
    assert 'aria-current="page">Writing' in page
    theirs = (await bob.page("/writing")).text
    assert persona["id"] not in theirs
    assert 'id="writing-empty">' in theirs  # the "none yet" note shows


async def test_the_build_form_has_labelled_sample_boxes_and_files(alice: WebUser) -> None:
    page = (await alice.page("/writing")).text
    for number in (1, 2, 3):
        assert f'<label for="sample-{number}">Sample {number}</label>' in page
    assert '<label for="sample-files">' in page and 'type="file"' in page
    assert 'data-field="samples"' in page and 'id="build-progress"' in page
    assert 'src="/static/writing.js?v=' in page and "<script>" not in page


async def test_a_name_and_samples_are_escaped_everywhere(web: Api, alice: WebUser) -> None:
    identity = f"Writes {XSS} with care."
    persona = await build(web, name=XSS, answer=synthesis_answer(identity), id="xss")
    for path in ("/writing", f"/writing/{persona['id']}"):
        page = (await alice.page(path)).text
        assert XSS not in page, path
        assert str(escape(XSS)) in page, path
    desk = (await alice.page(f"/writing/{persona['id']}")).text
    assert str(escape(identity)) in desk


async def test_another_users_writing_persona_is_a_404_page(web: Api, bob: WebUser) -> None:
    persona = await build(web)
    response = await bob.page(f"/writing/{persona['id']}", expect=404)
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text and "Sam Lee" not in response.text


async def test_a_persona_without_a_writing_block_is_a_404_page(alice: WebUser) -> None:
    response = await alice.page("/writing/tina-kulkarni", expect=404)
    assert "not a writing persona" in response.text


async def test_a_visitor_is_sent_to_sign_in(visitor: WebUser) -> None:
    response = await visitor.client.get("/writing/alice/anyone",
                                        headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fwriting%2Falice%2Fanyone"


# -- the draft desk --------

async def test_the_desk_offers_every_platform_with_the_apis_limits(web: Api,
                                                                   alice: WebUser) -> None:
    persona = await build(web)
    page = (await alice.page(f"/writing/{persona['id']}")).text
    data = desk_data(page)
    listed = (await alice.api("GET", "/v1/writing/platforms")).json()["data"]
    assert data["persona"] == persona["id"]
    assert [(p["id"], p["limit"]) for p in data["platforms"]] == [
        (p["id"], next(x["max"] for x in p["limits"] if x["field"] in ("text", "description")))
        for p in listed]
    youtube = next(p for p in data["platforms"] if p["id"] == "youtube")
    assert youtube["title"] == platforms.platform("youtube").limit_for("title").max  # type: ignore[union-attr]
    first = data["platforms"][0]
    assert f'<span id="draft-count" class="count">0/{first["limit"]}</span>' in page
    assert f'<meter id="draft-meter" min="0" max="{first["limit"]}"' in page


async def test_the_desk_shows_the_measured_voice(web: Api, alice: WebUser) -> None:
    persona = await build(web)
    block = persona["definition"]["writing"]
    page = (await alice.page(f"/writing/{persona['id']}")).text
    words = block["fingerprint"]["word_count"]
    assert f"{block['fingerprint']['sample_count']} ({words} words)" in page
    assert block["synthesis"]["identity"]["text"] in page
    mean = block["fingerprint"]["sentences"]["mean_words"]
    assert f"{mean:.1f} words on average" in page
    for marker in block["fingerprint"].get("go_to_phrases", [])[:3]:
        assert str(escape(marker["text"])) in page


async def test_a_failed_synthesis_is_shown_with_its_reasons(web: Api, alice: WebUser) -> None:
    scripted_model(web.runtime.providers).queue("not json", "not json", "not json")
    response = await web.client.post("/v1/writing/personas", headers=web.as_("alice"), json={
        "name": "Failing Voice", "samples": list(SAMPLES), "max_attempts": 3})
    assert response.status_code == 201, response.text
    persona = response.json()
    assert persona["definition"]["writing"]["synthesis"]["status"] == "failed"
    page = (await alice.page(f"/writing/{persona['id']}")).text
    assert "voice synthesis: failed" in page and "The voice synthesis failed" in page
    for reason in persona["definition"]["writing"]["synthesis"]["errors"]:
        assert str(escape(reason)) in page
    assert 'id="synthesis-why"' in page
    studio = (await alice.page("/writing")).text
    assert f'href="/writing/{persona["id"]}#synthesis-why">Why it failed</a>' in studio


async def test_an_ok_synthesis_has_no_failure_link(web: Api, alice: WebUser) -> None:
    await build(web)
    studio = (await alice.page("/writing")).text
    assert "voice synthesis: ok" in studio and "Why it failed" not in studio


# -- what the page's script calls --------

async def test_building_streams_progress_with_the_cookie(web: Api, alice: WebUser) -> None:
    await alice.page("/writing")
    scripted_model(web.runtime.providers).queue(synthesis_answer())
    body = {"name": "Page Built", "samples": [{"text": t} for t in SAMPLES]}
    async with alice.client.stream("POST", "/v1/writing/personas", json=body, headers={
            "X-CSRF-Token": alice.csrf, "Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        events = await sse_events(response)
    stages = [data["stage"] for name, data in events if name == "progress"]
    assert stages[0] == "measuring" and stages[-1] == "stored"
    assert events[-1][0] == "persona"
    page = (await alice.page("/writing")).text
    assert f'href="/writing/{events[-1][1]["id"]}"' in page


async def test_building_without_the_csrf_token_is_refused(web: Api, alice: WebUser) -> None:
    response = await alice.client.post("/v1/writing/personas", json={
        "name": "No Token", "samples": list(SAMPLES)})
    assert response.status_code == 403
    assert scripted_model(web.runtime.providers).requests == []


async def test_validate_counts_as_the_platform_does(web: Api, alice: WebUser) -> None:
    persona = await build(web)
    await alice.page(f"/writing/{persona['id']}")
    draft = "Shipping beats polishing 🚀 " * 12
    response = await alice.api("POST", "/v1/writing/x/validate", json={
        "persona": persona["id"], "text": draft})
    assert response.status_code == 200, response.text
    report = response.json()
    text = next(m for m in report["meters"] if m["name"] == "text")
    assert text["counting"] == "weighted" and text["used"] > len(draft)  # emoji weigh 2
    assert text["shown"] == f"{text['used']}/280" and report["meets_limits"] is False
    assert report["style"]["sentence_length"]["explanation"]
    empty = await alice.api("POST", "/v1/writing/x/validate", json={
        "persona": persona["id"], "text": "   "})
    assert empty.status_code == 422
