"""The chat pages: the viewer's sessions and history, rendered from the same services
as ``/v1/sessions``; statuses of stored turns; ratings through the cookie API."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.errors import ProviderError
from tests.support.api import Api
from tests.support.web import WebUser, serve_dashboard
from tests.support.writing_samples import scripted_model, scripted_settings

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
async def web(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with the scripted model (it echoes, or says what a test queues)."""
    settings = scripted_settings(sqlite_url, tmp_path, anonymous_loopback=False)
    async for harness in serve_dashboard(settings):
        yield harness


async def open_session(user: WebUser, persona: str = "tina-kulkarni") -> str:
    opened = await user.api("POST", "/v1/sessions", json={"persona_id": persona})
    assert opened.status_code == 201, opened.text
    return str(opened.json()["session"]["id"])


async def say(user: WebUser, sid: str, text: str, expect: int = 200) -> dict[str, Any]:
    sent = await user.api("POST", f"/v1/sessions/{sid}/messages", json={"content": text})
    assert sent.status_code == expect, sent.text
    return dict(sent.json())


def message_html(page: str, message_id: int) -> str:
    found = re.search(rf'<li class="message[^"]*" data-message-id="{message_id}".*?</li>',
                      page, re.S)
    assert found, f"message {message_id} is not on the page"
    return found.group(0)


def page_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="chat-data">(.*?)</script>',
                      page, re.S)
    assert found
    return dict(json.loads(found.group(1)))


async def test_the_chat_page_offers_the_usable_personas(alice: WebUser) -> None:
    page = (await alice.page("/chat")).text
    assert '<option value="tina-kulkarni"' in page and '<option value="genz-listener"' in page
    assert 'href="/chat" aria-current="page"' in page
    assert "No sessions yet." in page
    assert 'src="/static/chat.js?v=' in page
    assert 'id="chat-data"' not in page  # no session chosen: nothing to stream into


async def test_a_session_page_shows_its_greeting_history_and_list(alice: WebUser) -> None:
    sid = await open_session(alice)
    reply = await say(alice, sid, "tell me about the clinic")
    page = (await alice.page(f"/chat/{sid}")).text
    history = (await alice.api("GET", f"/v1/sessions/{sid}/messages")).json()["data"]
    assert history[0]["meta"].get("greeting")
    for message in history:
        assert message_html(page, message["id"])
    assert "tell me about the clinic" in message_html(page, history[-2]["id"])
    assert reply["reply"]["content"] in message_html(page, reply["reply"]["id"])
    assert f'<a href="/chat/{sid}" aria-current="page">' in page
    assert page_data(page)["session_id"] == sid
    assert 'id="composer"' in page and 'id="stop"' in page


async def test_message_text_is_escaped(alice: WebUser) -> None:
    sid = await open_session(alice)
    await say(alice, sid, XSS)
    page = (await alice.page(f"/chat/{sid}")).text
    assert XSS not in page
    assert page.count(ESCAPED) >= 2  # the user's message, and its echo


async def test_persona_names_are_escaped_everywhere(alice: WebUser) -> None:
    created = await alice.api("POST", "/v1/personas", json={"definition": {
        "id": "xss-chat", "name": XSS, "language": "en"}})
    assert created.status_code == 201, created.text
    sid = await open_session(alice, "alice/xss-chat")
    await say(alice, sid, "hello")
    page = (await alice.page(f"/chat/{sid}")).text
    assert XSS not in page
    assert f"{ESCAPED} (alice/xss-chat)</option>" in page
    assert f'<a href="/chat/{sid}" aria-current="page">{ESCAPED}</a>' in page
    assert page_data(page)["names"]["alice/xss-chat"] == XSS  # JSON, with < escaped
    voice = (await alice.page(f"/voice/{sid}")).text
    assert XSS not in voice and ESCAPED in voice


async def test_another_users_session_is_a_404_page(alice: WebUser, bob: WebUser) -> None:
    sid = await open_session(alice)
    await say(alice, sid, "private words")
    for path in (f"/chat/{sid}", f"/voice/{sid}", "/chat/no-such-session"):
        page = await bob.page(path, expect=404)
        assert "text/html" in page.headers["content-type"]
        assert "Not found" in page.text and "private words" not in page.text
    assert sid not in (await bob.page("/chat")).text


async def test_a_visitor_is_sent_to_sign_in(visitor: WebUser) -> None:
    response = await visitor.client.get("/chat", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fchat"


async def test_a_failed_reply_is_marked_with_its_reason(web: Api, alice: WebUser) -> None:
    scripted_model(web.runtime.providers).queue(
        ProviderError("scripted", "the model fell over"))
    sid = await open_session(alice)
    failed = await say(alice, sid, "hello", expect=502)
    saved = failed["error"]["details"]["message"]
    assert saved["status"] == "failed"
    html = message_html((await alice.page(f"/chat/{sid}")).text, saved["id"])
    assert 'data-status="failed"' in html
    assert '<span class="badge failed">Failed</span>' in html
    assert "the model fell over" in html


async def test_an_interrupted_reply_is_marked_and_keeps_its_text(web: Api,
                                                                  alice: WebUser) -> None:
    scripted_model(web.runtime.providers).queue(
        ["Half a ", "thought", ProviderError("scripted", "lost the stream")])
    sid = await open_session(alice)
    cut = await say(alice, sid, "hello", expect=502)
    saved = cut["error"]["details"]["message"]
    assert saved["status"] == "interrupted"
    html = message_html((await alice.page(f"/chat/{sid}")).text, saved["id"])
    assert '<span class="badge interrupted">Interrupted</span>' in html
    assert "Half a thought" in html
    assert "The reply was cut short; the text saved up to then is kept." in html


async def test_a_reply_cut_at_the_length_limit_says_so(alice: WebUser) -> None:
    created = await alice.api("POST", "/v1/personas", json={"definition": {
        "id": "terse", "name": "Terse", "language": "en", "model": {"max_tokens": 3}}})
    assert created.status_code == 201, created.text
    sid = await open_session(alice, "alice/terse")
    cut = (await say(alice, sid, "a reply far longer than three tokens can hold"))["reply"]
    assert cut["meta"]["finish_reason"] == "length"
    whole = (await say(alice, sid, "hi"))["reply"]
    assert whole["meta"]["finish_reason"] == "stop"
    page = (await alice.page(f"/chat/{sid}")).text
    note = "Cut off at the reply length limit"
    assert note in message_html(page, cut["id"])
    assert note not in message_html(page, whole["id"])


async def test_a_complete_reply_has_no_status_badge(alice: WebUser) -> None:
    sid = await open_session(alice)
    reply = (await say(alice, sid, "hello"))["reply"]
    html = message_html((await alice.page(f"/chat/{sid}")).text, reply["id"])
    assert 'data-status="complete"' in html and "badge" not in html


async def test_ratings_go_through_the_cookie_api_and_show_pressed(alice: WebUser) -> None:
    sid = await open_session(alice)
    reply = (await say(alice, sid, "hello"))["reply"]["id"]
    path = f"/v1/sessions/{sid}/messages/{reply}/rating"
    refused = await alice.client.post(path, json={"rating": "up"})  # no CSRF token
    assert refused.status_code == 403
    assert (await alice.api("POST", path, json={"rating": "down"})).status_code == 200
    html = message_html((await alice.page(f"/chat/{sid}")).text, reply)
    assert 'data-rating="down" aria-pressed="true"' in html
    assert 'data-rating="up" aria-pressed="false"' in html
    assert (await alice.api("DELETE", path)).status_code == 204
    html = message_html((await alice.page(f"/chat/{sid}")).text, reply)
    assert 'aria-pressed="true"' not in html


async def test_the_knowledge_a_reply_used_is_shown_under_it(alice: WebUser) -> None:
    created = await alice.api("POST", "/v1/personas", json={"definition": {
        "id": "gardener", "name": "Gardener", "language": "en", "knowledge": [
            {"title": "Tomato watering", "content": "Water tomatoes deeply twice a week."},
            {"title": "Rose pruning", "content": "Prune roses in late winter."}]}})
    assert created.status_code == 201, created.text
    sid = await open_session(alice, "alice/gardener")
    reply = (await say(alice, sid, "how often should I water tomatoes?"))["reply"]
    labels = [k["label"] for k in reply["meta"]["knowledge"]]
    assert "Tomato watering" in labels
    html = message_html((await alice.page(f"/chat/{sid}")).text, reply["id"])
    assert "Knowledge used:" in html and "<li>Tomato watering</li>" in html


async def test_a_switch_shows_the_other_persona(alice: WebUser) -> None:
    sid = await open_session(alice, "tina-kulkarni")
    switched = await alice.api("POST", f"/v1/sessions/{sid}/switch",
                               json={"persona_id": "genz-listener"})
    assert switched.status_code == 200, switched.text
    name = next(e["name"] for e in switched.json()["events"]
                if e["type"] == "persona_switched")
    reply = (await say(alice, sid, "hi there"))["reply"]
    page = (await alice.page(f"/chat/{sid}")).text
    note = next(m for m in (await alice.api("GET", f"/v1/sessions/{sid}/messages")).json()
                ["data"] if m["role"] == "event")
    assert f'<li class="message event" data-message-id="{note["id"]}"' in page
    assert "rating" not in message_html(page, note["id"])
    assert f'Talking to <span id="current-persona">{name}</span>' in page
    assert f'<span class="speaker">{name}</span>' in message_html(page, reply["id"])
    assert page_data(page)["persona_id"] == "genz-listener"


async def test_a_streamed_turn_through_the_cookie_api_lands_on_the_page(
        alice: WebUser) -> None:
    sid = await open_session(alice)
    response = await alice.api("POST", f"/v1/sessions/{sid}/messages",
                               json={"content": "stream this please", "stream": True})
    assert response.status_code == 200
    events = [json.loads(line[5:]) for line in response.text.splitlines()
              if line.startswith("data:")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message" and "delta" in kinds and kinds[-1] == "done"
    streamed = "".join(e["text"] for e in events if e["type"] == "delta")
    done = events[-1]["message"]
    assert streamed == done["content"]
    assert streamed in message_html((await alice.page(f"/chat/{sid}")).text, done["id"])


async def test_the_session_list_is_the_viewers_own(alice: WebUser, bob: WebUser) -> None:
    mine = await open_session(alice)
    theirs = await open_session(bob, "genz-listener")
    page = (await alice.page("/chat")).text
    assert f'href="/chat/{mine}"' in page and theirs not in page
    assert "Your sessions <span class=\"muted\">(1)</span>" in page


async def test_pages_carry_no_inline_script_or_style(alice: WebUser) -> None:
    sid = await open_session(alice)
    await say(alice, sid, "hello")
    for path in ("/chat", f"/chat/{sid}", "/voice", f"/voice/{sid}"):
        page = (await alice.page(path)).text
        assert not re.search(r"\son[a-z]+=|\sstyle=", page), path
        scripts = re.findall(r"<script(?![^>]*(?:src=|application/json))[^>]*>", page)
        assert not scripts, (path, scripts)
    for name in ("chat.js", "chat.css", "voice.js", "voice.css", "voice-capture.js"):
        assert (await alice.client.get(f"/static/{name}")).status_code == 200, name


async def test_the_editors_chat_link_preselects_its_persona(alice: WebUser) -> None:
    page = (await alice.page("/chat?persona=genz-listener")).text
    assert re.search(r'<option value="genz-listener" selected>', page)
    plain = (await alice.page("/chat")).text
    assert not re.search(r'<option value="genz-listener" selected>', plain)


async def test_only_complete_replies_to_the_user_offer_rating_buttons(
        web: Api, alice: WebUser) -> None:
    """A greeting answers nobody, and a cut or failed reply is not the persona's answer:
    the page offers thumbs for complete replies to the user only."""
    sid = await open_session(alice)
    reply = (await say(alice, sid, "hello"))["reply"]
    scripted_model(web.runtime.providers).queue(
        ["Half a ", "thought", ProviderError("scripted", "lost the stream")])
    cut = (await say(alice, sid, "again", expect=502))["error"]["details"]["message"]
    scripted_model(web.runtime.providers).queue(ProviderError("scripted", "fell over"))
    failed = (await say(alice, sid, "once more", expect=502))["error"]["details"]["message"]
    history = (await alice.api("GET", f"/v1/sessions/{sid}/messages")).json()["data"]
    greeting = history[0]
    assert greeting["meta"].get("greeting") and greeting["role"] == "assistant"
    page = (await alice.page(f"/chat/{sid}")).text
    assert 'class="rating"' in message_html(page, reply["id"])
    for unrated in (greeting, cut, failed):
        assert 'class="rating"' not in message_html(page, unrated["id"]), unrated["status"]
    assert (cut["status"], failed["status"]) == ("interrupted", "failed")
