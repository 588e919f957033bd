"""A voice call in a real browser: Chromium's fake microphone says "What is your
favourite colour?"; the offline recogniser hears it, the persona answers, and the
page shows both sides and the latency of each stage."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.test_chat import make_persona
from tests.support.browser import Dashboard, assert_accessible, sign_in, snap

HEARD = re.compile(r"colou?r", re.IGNORECASE)
SPEECH_TIMEOUT = 60_000  # the first call loads the speech models


def session_count(page: Page) -> int:
    """The number in the session list's heading, "Your sessions (N)"."""
    heading = page.locator("#sessions-title .muted").text_content() or ""
    return int(heading.strip("() "))


def test_a_call_hears_the_microphone_and_answers(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Wren")
    page.goto("/voice")
    expect(page.get_by_role("heading", name="Voice call", level=1)).to_be_visible()
    snap(page, "voice")
    assert_accessible(page)
    sessions = page.locator(".session-list")
    before = session_count(page)
    page.get_by_label("Persona", exact=True).select_option(persona)
    page.get_by_role("button", name="Start call").click()
    expect(page).to_have_url(re.compile(r"/voice/[^/]+$"))
    # The call's new session is listed, as the current one, without a reload.
    current = sessions.get_by_role("link", name=name)
    expect(current).to_have_attribute("aria-current", "page")
    expect(current).to_have_attribute("href", re.compile(r"^/voice/" + re.escape(
        page.url.rsplit("/", 1)[1]) + "$"))
    expect(sessions.locator('[aria-current="page"]')).to_have_count(1)
    assert session_count(page) == before + 1
    expect(page.get_by_role("button", name="Hang up")).to_be_enabled()
    transcript = page.locator("#transcript")
    you = transcript.locator("li.user .content").first
    expect(you).to_have_text(HEARD, timeout=SPEECH_TIMEOUT)
    reply = transcript.locator("li.assistant .content").first
    expect(reply).to_contain_text(f"{name} heard:", timeout=SPEECH_TIMEOUT)
    expect(reply).to_contain_text(HEARD)
    latency = transcript.locator(".latency").first
    expect(latency).to_contain_text("Speech recognition", timeout=SPEECH_TIMEOUT)
    expect(latency.locator("dd").first).to_have_text(re.compile(r"^\d+ ms$"))
    snap(page, "voice-call")
    assert_accessible(page)
    page.get_by_role("button", name="Hang up").click()
    expect(page.get_by_role("status").filter(has_text="Call ended")).to_be_visible()
    expect(page.get_by_role("button", name="Start call")).to_be_enabled()
