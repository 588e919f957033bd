"""The writing studio in a real browser: build a writing persona from pasted samples,
then check a draft on the desk (the live meter, the limits and the style report).

The server's model answers a structured request with a minimal instance of its schema,
which cites no evidence from the samples: the synthesis is refused and the persona is
stored with what was measured and a failed synthesis, as the product does for a model
that cannot back its claims. Everything the desk shows comes from measuring.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, api_call, assert_accessible, sign_in, snap
from tests.support.writing_samples import SAMPLES

DRAFT = "Shipping beats polishing. Small releases teach us more than polished ones. 🚀"


def test_build_a_writing_persona_from_pasted_samples(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/writing")
    expect(page.get_by_role("heading", level=1)).to_have_text("Writing studio")
    snap(page, "writing")
    assert_accessible(page)
    page.get_by_label("Name", exact=True).fill("Pasted Voice")
    for number, text in enumerate(SAMPLES[:3], 1):
        page.get_by_label(f"Sample {number}", exact=True).fill(text)
    page.get_by_role("button", name="Add a sample box").click()
    page.get_by_label("Sample 4", exact=True).fill(SAMPLES[3])
    page.get_by_role("button", name="Build the persona").click()
    message = page.locator("#build-message")
    expect(message).to_have_text("Built Pasted Voice (version 1).")
    card = page.locator("#writing-list li", has_text="Pasted Voice")
    expect(card).to_contain_text(f"{len(SAMPLES)} samples")
    expect(page.locator("#build-progress")).to_have_attribute("value", "100")
    href = card.get_by_role("link", name="Pasted Voice").get_attribute("href")
    assert href and href.startswith("/writing/")
    expect(message.get_by_role("link", name="Pasted Voice")).to_have_attribute("href", href)
    stored = api_call(dashboard, "alice", "GET", f"/v1/writing/personas/{href[9:]}")
    errors = stored["definition"]["writing"]["synthesis"]["errors"]
    reason = errors[-1].split(": ", 1)[1]  # "attempt 3: <why>"
    expect(card.locator(".badge.failed")).to_have_attribute("title", "\n".join(errors))
    expect(card).to_contain_text(f"Why: {reason}")
    snap(page, "writing-built")
    message.get_by_role("link", name="Pasted Voice").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pasted Voice")
    expect(page.get_by_text("voice synthesis: failed").first).to_be_visible()
    expect(page.locator("#synthesis-why")).to_contain_text(errors[-1])
    page.get_by_role("link", name="← Writing studio").click()
    card = page.locator("#writing-list li", has_text="Pasted Voice")  # drawn by the server now
    card.get_by_role("link", name="Why it failed").click()
    expect(page).to_have_url(f"{dashboard.url}{href}#synthesis-why")


def test_the_studio_fits_a_phone_screen(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/writing")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways ({width} px)"
    snap(page, "writing-phone")


def test_validate_a_draft_and_see_the_meter_and_report(page: Page,
                                                       dashboard: Dashboard) -> None:
    persona = api_call(dashboard, "alice", "POST", "/v1/writing/personas", name="Desk Voice",
                   samples=list(SAMPLES))
    expected = api_call(dashboard, "alice", "POST", "/v1/writing/x/validate",
                    persona=persona["id"], text=DRAFT)
    shown = next(m["shown"] for m in expected["meters"] if m["name"] == "text")
    sign_in(page, dashboard, "alice")
    page.goto(f"/writing/{persona['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Desk Voice")
    page.get_by_label("Platform", exact=True).select_option("x")
    expect(page.locator("#draft-count")).to_have_text("0/280")
    page.get_by_label("Text", exact=True).fill(DRAFT)
    expect(page.locator("#draft-count")).to_have_text(shown)  # the API's count (emoji: 2)
    expect(page.locator("#draft-meter")).to_have_attribute("max", "280")
    report = page.locator("#report")
    expect(report).to_contain_text("within the platform's limits")
    expect(report.locator("table.style-table caption")).to_have_text("Style report")
    expect(report.locator("table.style-table tbody tr").first).to_contain_text("score")
    page.get_by_label("Platform", exact=True).select_option("linkedin")
    expect(page.locator("#draft-count")).to_have_text(f"{len(DRAFT)}/3000")
    snap(page, "writing-desk")
    assert_accessible(page)
