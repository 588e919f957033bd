"""The persona gallery and editor in a real browser against a real ``personae serve``."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Dialog, Page, expect

from tests.support.browser import Dashboard, api_call, assert_accessible, sign_in, snap
from tests.support.cards import v3_png

XSS = "<script>alert(1)</script>"


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def create_as(dashboard: Dashboard, who: str, definition: dict[str, object],
              visibility: str = "private") -> str:
    """A persona made through the API with ``who``'s key; its id."""
    response = httpx.post(f"{dashboard.url}/v1/personas", json={
        "definition": definition, "visibility": visibility},
        headers={"Authorization": f"Bearer {dashboard.keys[who]}"}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_create_edit_version_diff_and_roll_back(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    name = unique("Flow Tutor")
    page.goto("/")
    page.get_by_role("link", name="New persona").click()
    expect(page.get_by_role("heading", name="New persona")).to_be_visible()
    snap(page, "persona-new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Role").fill("maths tutor")
    page.get_by_label("Description").fill("first words")
    page.get_by_role("button", name="Add a block").click()
    page.get_by_label("Block name").fill("teaching style")
    page.get_by_label("Block text").fill("Socratic questions.")
    page.get_by_role("button", name="Create persona").click()
    expect(page).to_have_url(re.compile(rf"/personas/alice/{slug(name)}\?saved=1"))
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()

    page.get_by_label("Description").fill("second words")
    page.get_by_label("Version note", exact=True).fill("reworded the description")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#saved-note")).to_have_text("Saved as version 2.")
    expect(page.get_by_label("Block name")).to_have_value("teaching style")

    page.get_by_role("tab", name="History").click()
    history = page.locator("#versions")
    expect(history).to_contain_text("reworded the description")
    page.get_by_role("button", name="Show the differences").click()
    expect(page.locator("#diff-lines .diff-del")).to_contain_text(["-description: first words"])
    expect(page.locator("#diff-lines .diff-add")).to_contain_text(["+description: second words"])
    snap(page, "persona-diff")

    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.locator("#saved-note")).to_have_text("Saved as version 3.")
    expect(page.get_by_label("Description")).to_have_value("first words")
    page.get_by_role("tab", name="System prompt").click()
    expect(page.locator("#prompt-tokens")).to_have_text(re.compile(r"^[1-9]\d*$"))
    snap(page, "persona-prompt")


def test_import_a_card_png_and_see_its_avatar(page: Page, dashboard: Dashboard,
                                              tmp_path: Path) -> None:
    sign_in(page, dashboard, "bob")
    card = tmp_path / "ione.png"
    card.write_bytes(v3_png())
    page.goto("/")
    page.get_by_label("File to import").set_input_files(card)
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("Imported ione.png (png)")
    expect(report.locator(".warnings li").first).to_be_visible()
    snap(page, "persona-import")
    report.get_by_role("link", name="Ione Vale").click()
    expect(page.get_by_role("heading", name="Ione Vale", level=1)).to_be_visible()
    page.goto("/?q=ione+vale")
    image = page.locator('[data-persona="bob/ione-vale"] img.avatar')
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") > 0


def test_a_file_dropped_on_the_zone_is_imported(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    name = unique("Dropped")
    page.goto("/")
    content = json.dumps({"name": name, "description": "from a drop"})
    page.locator("#dropzone").dispatch_event("drop", {"dataTransfer": page.evaluate_handle(
        """text => { const data = new DataTransfer();
                     data.items.add(new File([text], "dropped.json", {type: "application/json"}));
                     return data; }""", content)})
    report = page.locator("#import-report")
    expect(report).to_contain_text("Imported dropped.json (persona)")
    expect(report.get_by_role("link", name=name)).to_be_visible()


def test_a_validation_error_appears_next_to_its_field(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    pid = create_as(dashboard, "alice", {"name": unique("Strict")})
    page.goto(f"/personas/{pid}")
    page.get_by_label("Temperature").fill("9")
    page.get_by_label("Language", exact=True).fill("notalanguage123")
    page.get_by_role("button", name="Save as new version").click()
    temperature = page.get_by_label("Temperature")
    expect(temperature).to_have_attribute("aria-invalid", "true")
    error = page.locator("#f-model-temperature-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("2")
    expect(page.locator("#f-language-error")).to_be_visible()
    assert page.evaluate("document.activeElement.getAttribute('aria-invalid')") == "true"
    snap(page, "persona-validation")
    assert_accessible(page)


def test_a_block_chosen_as_a_list_or_mapping_is_saved_as_one(page: Page,
                                                            dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    pid = create_as(dashboard, "alice", {"name": unique("Lister"), "traits": {"style": "warm"}})
    page.goto(f"/personas/{pid}")
    page.get_by_role("button", name="Add a block").click()
    added = page.locator("[data-trait]").last
    added.get_by_label("Block name").fill("topics")
    kind = added.get_by_label("Block kind")
    expect(kind).to_have_value("text")
    kind.select_option(label="List / mapping (JSON)")
    expect(added.locator(".hint")).to_contain_text("JSON")
    text = added.get_by_label("Block text")
    text.fill('["a",')
    page.get_by_role("button", name="Save as new version").click()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(added.locator(".field-error")).to_contain_text("not valid JSON")
    assert_accessible(page)
    text.fill('["a","b"]')
    existing = page.locator("[data-trait]").first
    existing.get_by_label("Block kind").select_option("json")
    existing.get_by_label("Block text").fill('{"tone": "warm"}')
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#saved-note")).to_have_text("Saved as version 2.")
    traits = api_call(dashboard, "alice", "GET", f"/v1/personas/{pid}")["definition"]["traits"]
    assert traits == {"style": {"tone": "warm"}, "topics": ["a", "b"]}
    kinds = page.locator("[data-trait] [data-trait-kind]")
    expect(kinds).to_have_count(2)
    for index in range(2):
        expect(kinds.nth(index)).to_have_value("json")
    snap(page, "persona-trait-kinds")


def test_a_script_name_renders_as_text(page: Page, dashboard: Dashboard) -> None:
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    sign_in(page, dashboard, "alice")
    marker = uuid.uuid4().hex[:6]
    pid = create_as(dashboard, "alice", {"id": f"xss-{marker}", "name": XSS,
                                         "description": f"{XSS} {marker}", "notes": XSS})
    page.goto(f"/?q={marker}")
    card = page.locator(f'[data-persona="{pid}"]')
    expect(card.get_by_role("link", name=XSS)).to_be_visible()
    page.goto(f"/personas/{pid}")
    expect(page.get_by_role("heading", name=XSS, level=1)).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value(XSS)
    expect(page.get_by_label("Block text")).to_have_value(XSS)
    page.get_by_role("tab", name="YAML").click()
    expect(page.locator("#yaml-text")).to_have_value(re.compile(re.escape(XSS)))
    snap(page, "persona-xss")
    assert dialogs == []


def test_another_users_private_persona_is_a_404_page(page: Page, dashboard: Dashboard) -> None:
    pid = create_as(dashboard, "alice", {"name": unique("Private Polly")})
    sign_in(page, dashboard, "bob")
    response = page.goto(f"/personas/{pid}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name=re.compile("Not found"))).to_be_visible()
    snap(page, "persona-404")


def test_a_global_persona_is_read_only_for_a_member(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "bob")
    page.goto("/personas/tina-kulkarni")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.get_by_role("button", name="Save as new version")).to_have_count(0)
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    snap(page, "persona-read-only")
    assert_accessible(page)


def test_gallery_filters_on_a_phone_and_in_dark_mode(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/")
    expect(page.get_by_role("heading", name="Personas", level=1)).to_be_visible()
    assert_accessible(page)
    snap(page, "personas-gallery")
    page.get_by_label("Tag", exact=True).fill("hindi")
    page.get_by_label("Sort by").select_option("newest")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"tag=hindi.*sort=newest"))
    expect(page.locator('[data-persona="tina-kulkarni"]')).to_be_visible()
    expect(page.locator('[data-persona="mohit"]')).to_have_count(0)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    snap(page, "personas-gallery-375")
    page.emulate_media(color_scheme="dark")
    page.reload()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 22, 27)"
    assert_accessible(page)
    snap(page, "personas-gallery-dark")
