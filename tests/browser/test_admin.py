"""The admin pages in a real browser: users, a key shown once and revoked (its browser
is signed out), members refused, every page accessible, dark and narrow."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import Dashboard, assert_accessible, sign_in, snap

PAGES = (("/admin", "admin-overview"), ("/admin/users", "admin-users"),
         ("/admin/users/alice", "admin-keys"), ("/admin/audit?since=7d", "admin-audit"),
         ("/admin/metrics", "admin-metrics"), ("/admin/health", "admin-health"))


def _unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def test_every_admin_page_renders_and_is_accessible(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "admin")
    for path, name in PAGES:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.locator(".admin-nav [aria-current=page]")).to_have_count(1)
        snap(page, name)
        assert_accessible(page)
    expect(page.locator("[data-check=Database] [data-state]")).to_have_text("ok")


def test_a_key_is_shown_once_and_revoking_it_signs_its_browser_out(
        page: Page, browser: Browser, browser_context_args: dict[str, Any],
        dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "admin")
    page.goto("/admin/users/alice")
    label = _unique("browser")
    page.get_by_label("Label").fill(label)
    page.get_by_role("button", name="Create key").click()
    field = page.get_by_label("The new API key")
    expect(field).to_have_value(re.compile(r"^pk_"))
    token = field.input_value()
    expect(page.get_by_text("shown this once")).to_be_visible()
    snap(page, "admin-key-created")
    other = browser.new_context(**browser_context_args)
    try:
        theirs = other.new_page()
        theirs.goto("/sign-in")
        theirs.get_by_label("API key").fill(token)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs.locator(".account .who")).to_have_text("alice")
        page.reload()
        expect(page.locator("#new-key")).to_be_hidden()
        assert token not in page.content()
        row = page.locator("tr", has_text=label)
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(row.locator("[data-status]")).to_have_text("revoked")
        theirs.goto("/personas/new")
        expect(theirs).to_have_url(re.compile(r"/sign-in\?next="))
    finally:
        other.close()


def test_users_are_created_changed_and_the_last_admin_kept(page: Page,
                                                           dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "admin")
    page.goto("/admin/users")
    name = _unique("user")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create user").click()
    row = page.locator(f'tr[data-user="{name}"]')
    expect(row.locator("[data-role]")).to_have_text("member")
    row.get_by_role("button", name="Disable").click()
    expect(page.locator(f'tr[data-user="{name}"] [data-status]')).to_have_text("disabled")
    page.locator(f'tr[data-user="{name}"]').get_by_role("button", name="Enable").click()
    expect(page.locator(f'tr[data-user="{name}"] [data-status]')).to_have_text("enabled")
    mine = page.locator('tr[data-user="admin"]')
    mine.get_by_label("Role of admin").select_option("member")
    mine.get_by_role("button", name="Change role").click()
    expect(page.locator("#users-error")).to_contain_text("last admin")
    page.get_by_label("Name", exact=True).fill("Not A Name")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#new-user-name-error")).to_contain_text("user name")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    snap(page, "admin-users-errors")


def test_a_member_opening_admin_sees_the_403_page(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto("/admin/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not allowed")
    expect(page.locator("table.users")).to_have_count(0)
    snap(page, "admin-403")
    assert_accessible(page)


def test_dark_theme_and_a_phone_width(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "admin")
    page.goto("/admin/metrics")
    page.evaluate("localStorage.removeItem('personae-theme')")
    page.emulate_media(color_scheme="light")
    page.reload()
    page.get_by_role("button", name="Switch between light and dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 22, 27)"  # the dark --bg
    snap(page, "admin-metrics-dark")
    assert_accessible(page)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/admin/audit")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways ({width} px)"
    page.locator(".admin-nav").get_by_role("link", name="Health").click()
    expect(page).to_have_url(re.compile(r"/admin/health$"))
    snap(page, "admin-health-phone")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    expect(page).to_have_url(re.compile(r"/chat$"))
