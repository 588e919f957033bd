"""The voice call page: an honest note when voice is not installed, else the call's
controls and the session's transcript, with the same ownership checks as the API."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.web import pages
from personae.web.capabilities import VOICE_HINT, Capabilities
from tests.support.api import Api
from tests.support.web import WebUser, serve_dashboard
from tests.support.writing_samples import scripted_settings


@pytest.fixture
async def web(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = scripted_settings(sqlite_url, tmp_path, anonymous_loopback=False)
    async for harness in serve_dashboard(settings):
        yield harness


def voice_installed(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    capabilities = Capabilities(voice=installed, voice_hint=VOICE_HINT)
    monkeypatch.setattr(pages, "capabilities_of", lambda runtime: capabilities)


async def session_with_turn(user: WebUser, text: str) -> str:
    opened = await user.api("POST", "/v1/sessions", json={"persona_id": "tina-kulkarni"})
    assert opened.status_code == 201, opened.text
    sid = str(opened.json()["session"]["id"])
    sent = await user.api("POST", f"/v1/sessions/{sid}/messages", json={"content": text})
    assert sent.status_code == 200, sent.text
    return sid


def voice_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="voice-data">(.*?)</script>',
                      page, re.S)
    assert found, "no data for the call's script"
    return dict(json.loads(found.group(1)))


async def test_without_voice_the_page_says_how_to_enable_it(
        monkeypatch: pytest.MonkeyPatch, alice: WebUser) -> None:
    voice_installed(monkeypatch, False)
    sid = await session_with_turn(alice, "hello")
    for path in ("/voice", f"/voice/{sid}"):
        page = (await alice.page(path)).text
        assert "Voice is not installed here" in page
        assert "pip install &#39;personae[voice]&#39;" in page
        assert "voice.js" not in page and 'id="call-form"' not in page
        assert 'href="/voice" aria-current="page"' in page


async def test_with_voice_the_page_offers_a_call(monkeypatch: pytest.MonkeyPatch,
                                                 alice: WebUser) -> None:
    voice_installed(monkeypatch, True)
    page = (await alice.page("/voice")).text
    assert "is not installed here" not in page
    assert 'id="call-form"' in page and 'id="hang-up"' in page
    assert '<label for="call-persona">Persona</label>' in page
    assert '<option value="tina-kulkarni"' in page
    assert 'src="/static/voice.js?v=' in page
    assert voice_data(page)["session_id"] is None


async def test_a_session_call_page_shows_its_transcript(monkeypatch: pytest.MonkeyPatch,
                                                        alice: WebUser) -> None:
    voice_installed(monkeypatch, True)
    sid = await session_with_turn(alice, "what about <b>colour</b>?")
    page = (await alice.page(f"/voice/{sid}")).text
    data = voice_data(page)
    assert (data["session_id"], data["persona_id"]) == (sid, "tina-kulkarni")
    assert "what about &lt;b&gt;colour&lt;/b&gt;?" in page and "<b>colour</b>" not in page
    assert f'<a href="/voice/{sid}" aria-current="page">' in page
    assert '<option value="tina-kulkarni" selected>' in page


async def test_another_users_call_is_a_404_page(monkeypatch: pytest.MonkeyPatch,
                                                alice: WebUser, bob: WebUser) -> None:
    voice_installed(monkeypatch, True)
    sid = await session_with_turn(alice, "only mine")
    page = await bob.page(f"/voice/{sid}", expect=404)
    assert "Not found" in page.text and "only mine" not in page.text
    assert sid not in (await bob.page("/voice")).text
