"""Chat in a real browser: a reply streams in word by word over the session socket (or
over server-sent events where WebSockets are blocked), a switch hands the session to
another persona, ratings stick on replies only, sessions are listed."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.support.browser import Dashboard, assert_accessible, sign_in, snap


def make_persona(dashboard: Dashboard, label: str, greeting: str = "") -> tuple[str, str]:
    """A persona of alice's with a unique name (the server is shared): (id, name)."""
    slug = f"{label.lower()}-{uuid.uuid4().hex[:8]}"
    name = f"{label} {slug[-8:]}"
    definition = {"id": slug, "name": name, "language": "en",
                  **({"greeting": greeting} if greeting else {})}
    created = httpx.post(f"{dashboard.url}/v1/personas", json={"definition": definition},
                         headers={"Authorization": f"Bearer {dashboard.keys['alice']}"})
    assert created.status_code == 201, created.text
    return f"alice/{slug}", name


def start_chat(page: Page, persona_id: str) -> None:
    page.goto("/chat")
    page.get_by_label("Persona", exact=True).select_option(persona_id)
    page.get_by_role("button", name="Start chat").click()
    expect(page).to_have_url(re.compile(r"/chat/[^/]+$"))


def send(page: Page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send").click()


LAST_REPLY = "#messages > li.assistant:last-child .content"


def test_a_reply_streams_in_word_by_word(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Lark", greeting="Hello, I am {{char}}.")
    start_chat(page, persona)
    expect(page.locator("#messages")).to_contain_text(f"Hello, I am {name}.")
    snap(page, "chat-session")
    assert_accessible(page)
    # Every text the streaming reply shows, as the page changes it.
    page.evaluate("""() => {
      window.seen = [];
      new MutationObserver(() => {
        const node = document.querySelector('#messages .status-streaming .content');
        if (node) window.seen.push(node.textContent);
      }).observe(document.getElementById('messages'),
                 {childList: true, subtree: true, characterData: true});
    }""")
    words = "one two three four five six seven eight nine ten eleven twelve thirteen"
    send(page, words)
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    full = f"{name} heard: {words}"
    expect(page.locator(LAST_REPLY)).to_have_text(full)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    seen = [text for text in page.evaluate("window.seen") if text]
    assert len(set(seen)) >= 3, seen  # it grew in several steps, not all at once
    assert all(full.startswith(text) for text in seen), seen
    assert [len(t) for t in seen] == sorted(len(t) for t in seen)
    snap(page, "chat-streamed")


def test_a_switch_hands_the_session_to_the_other_persona(page: Page,
                                                         dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    first, first_name = make_persona(dashboard, "Heron")
    second, second_name = make_persona(dashboard, "Finch", greeting="Finch here.")
    start_chat(page, first)
    send(page, "first words")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{first_name} heard: first words")
    page.get_by_label("Switch persona").select_option(second)
    page.get_by_role("button", name="Switch", exact=True).click()
    expect(page.locator("#messages .event").last).to_have_text(f"switched to {second_name}")
    expect(page.locator("#current-persona")).to_have_text(second_name)
    greeting = page.locator("#messages > li.assistant").last
    expect(greeting.locator(".content")).to_have_text("Finch here.")
    expect(greeting.locator(".rating")).to_have_count(0)  # a greeting answers nobody
    send(page, "second words")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{second_name} heard: second words")
    snap(page, "chat-switched")


def test_a_rating_is_pressed_and_stays_after_reload(page: Page,
                                                    dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Plover")
    start_chat(page, persona)
    send(page, "rate me")
    reply = page.locator("#messages > li.assistant").last
    expect(reply.locator(".content")).to_have_text(f"{name} heard: rate me")
    up = reply.get_by_role("button", name="Good reply")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    page.reload()
    reply = page.locator("#messages > li.assistant").last
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed",
                                                                            "true")
    reply.get_by_role("button", name="Bad reply").click()
    expect(reply.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed",
                                                                           "true")
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed",
                                                                            "false")
    snap(page, "chat-rated")


def test_the_session_list_shows_the_session_after_reload(page: Page,
                                                         dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Tern")
    start_chat(page, persona)
    session_url = page.url
    send(page, "remember this")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{name} heard: remember this")
    page.goto("/chat")
    link = page.locator(".session-list").get_by_role("link", name=name)
    expect(link).to_be_visible()
    snap(page, "chat-sessions")
    assert_accessible(page)
    link.click()
    expect(page).to_have_url(session_url)
    expect(page.locator("#messages")).to_contain_text("remember this")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{name} heard: remember this")
    page.set_viewport_size({"width": 375, "height": 800})  # a phone, in the dark theme
    page.emulate_media(color_scheme="dark")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    snap(page, "chat-phone-dark")
    assert_accessible(page)


SOCKET = re.compile(r"/v1/sessions/[^/]+/ws$")
STREAMING = "#messages .status-streaming .content"


def block_websockets(page: Page) -> list[str]:
    """Every session socket the page opens is closed before it is ready, as a proxy
    that refuses upgrades would; returns the list of URLs it tried."""
    tried: list[str] = []

    def refuse(ws: WebSocketRoute) -> None:
        tried.append(ws.url)
        ws.close(code=1011, reason="upgrades blocked")

    page.route_web_socket(SOCKET, refuse)
    return tried


def test_without_websockets_a_reply_streams_over_sse_and_is_saved(
        page: Page, dashboard: Dashboard) -> None:
    tried = block_websockets(page)
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Robin")
    start_chat(page, persona)
    page.evaluate("""(selector) => {
      window.seen = [];
      new MutationObserver(() => {
        const node = document.querySelector(selector);
        if (node) window.seen.push(node.textContent);
      }).observe(document.getElementById('messages'),
                 {childList: true, subtree: true, characterData: true});
    }""", STREAMING)
    words = "one two three four five six seven eight nine ten eleven twelve"
    with page.expect_response(lambda r: r.url.endswith("/messages")
                              and r.request.method == "POST") as posted:
        send(page, words)
    assert posted.value.headers["content-type"].startswith("text/event-stream")
    reply = page.locator("#messages > li.assistant").last
    expect(reply.locator(".content")).to_have_text(f"{name} heard: {words}")
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.get_by_role("button", name="Good reply")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    seen = [text for text in page.evaluate("window.seen") if text]
    assert len(set(seen)) >= 3, seen  # streamed in several steps
    send(page, "and again")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{name} heard: and again")
    assert len(tried) == 1, tried  # once refused, the page stays on SSE
    page.reload()
    expect(page.locator("#messages")).to_contain_text(f"{name} heard: {words}")
    expect(page.locator(LAST_REPLY)).to_have_text(f"{name} heard: and again")
    snap(page, "chat-sse")


def test_without_websockets_stop_keeps_the_reply_as_interrupted(
        page: Page, dashboard: Dashboard) -> None:
    block_websockets(page)
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Swift")
    start_chat(page, persona)
    words = " ".join(f"word{i}" for i in range(200))  # about four seconds of reply
    send(page, words)
    expect(page.locator(STREAMING)).to_contain_text("word3")
    page.get_by_role("button", name="Stop").click()
    reply = page.locator("#messages > li.assistant").last
    expect(reply).to_have_attribute("data-status", "interrupted")
    expect(reply.locator(".badge")).to_have_text("Interrupted")
    expect(reply.locator(".rating")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    shown = reply.locator(".content").text_content() or ""
    assert shown.startswith(f"{name} heard: word0") and "word199" not in shown, shown
    page.reload()
    saved = page.locator("#messages > li.assistant").last
    expect(saved).to_have_attribute("data-status", "interrupted")
    expect(saved.locator(".content")).to_have_text(shown)
    send(page, "after the stop")  # the session is free for the next turn
    expect(page.locator(LAST_REPLY)).to_have_text(f"{name} heard: after the stop")


MARKDOWN = "\n".join([
    "Here is **bold** and *soft* text with `inline code`.",
    "",
    "```python",
    "if a < b and c > d:",
    "    print('<b>not bold</b>')",
    "wide = '" + "x" * 300 + "'",
    "```",
    "",
    "- apple",
    "- pear",
    "",
    "1. first",
    "2. second",
    "",
    "[trap](javascript:alert(1)) and [docs](https://example.com/guide)",
    "",
    "<img src=x onerror=alert(1)>",
])


def assert_rendered_markdown(page: Page) -> None:
    """The last reply as Markdown: code in ``pre code``, bold as ``strong``, lists as
    lists, only the http(s) link a link, and the HTML in it shown as text."""
    reply = page.locator("#messages > li.assistant").last
    code = reply.locator("pre code")
    expect(code).to_have_count(1)
    assert code.text_content() == ("if a < b and c > d:\n    print('<b>not bold</b>')\n"
                                   f"wide = '{'x' * 300}'")
    # A long code line scrolls inside its block: not wrapped, not widening the page.
    assert reply.locator("pre").evaluate("pre => pre.scrollWidth > pre.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("em")).to_have_text("soft")
    expect(reply.locator(":not(pre) > code")).to_have_text("inline code")
    expect(reply.locator("ul > li")).to_have_text(["apple", "pear"])
    expect(reply.locator("ol > li")).to_have_text(["first", "second"])
    links = reply.locator(".content a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/guide")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(links).to_have_attribute("target", "_blank")
    expect(reply.locator(".content")).to_contain_text("[trap](javascript:alert(1))")
    expect(reply.locator(".content")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("#messages img, #messages b")).to_have_count(0)
    mine = page.locator("#messages > li.user").last.locator(".content")
    expect(mine.locator("strong, pre, a")).to_have_count(0)  # the user's words stay text
    expect(mine).to_contain_text("**bold**")


def test_a_reply_in_markdown_is_rendered_safely_live_and_after_reload(
        page: Page, dashboard: Dashboard) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, dashboard, "alice")
    persona, name = make_persona(dashboard, "Wren", greeting="Hi, I am **{{char}}**.")
    start_chat(page, persona)
    greeting = page.locator("#messages > li.assistant").first
    expect(greeting.locator("strong")).to_have_text(name)
    send(page, MARKDOWN)
    reply = page.locator("#messages > li.assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".content")).to_contain_text(f"{name} heard: Here is")
    assert_rendered_markdown(page)
    snap(page, "chat-markdown")
    page.reload()
    expect(page.locator("#messages > li.assistant").first.locator("strong")).to_have_text(name)
    assert_rendered_markdown(page)
    assert_accessible(page)
    assert not dialogs, dialogs


def test_a_field_error_joins_the_fields_hint_and_leaves_it_when_cleared(
        page: Page, dashboard: Dashboard) -> None:
    """The shared form helpers add an error to a field's description and take only the
    error away again, so the field keeps its hint."""
    sign_in(page, dashboard, "alice")
    page.goto("/chat")
    described = page.evaluate("""() => {
      const form = document.createElement('form');
      form.innerHTML = '<input id="f-name" name="name" aria-describedby="f-name-hint">'
        + '<p id="f-name-hint">A hint</p><input id="f-age" name="age">';
      document.body.append(form);
      const attr = (id) => form.querySelector('#' + id).getAttribute('aria-describedby');
      const errors = { message: 'bad', details: { errors: [
        { path: 'name', message: 'Too long' }, { path: 'age', message: 'Too old' }] } };
      const seen = [];
      for (let round = 0; round < 2; round += 1) {
        window.Personae.showErrors(form, errors);
        seen.push([attr('f-name'), attr('f-age')]);
        window.Personae.clearErrors(form);
        seen.push([attr('f-name'), attr('f-age')]);
      }
      return seen;
    }""")
    shown, cleared = ["f-name-hint f-name-error", "f-age-error"], ["f-name-hint", None]
    assert described == [shown, cleared, shown, cleared]
