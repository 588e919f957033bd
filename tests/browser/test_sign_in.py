"""Signing in and out in a real browser: the error next to the field, the page asked
for, the cookie's flags, and signing out."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, assert_accessible, sign_in, snap


def test_a_wrong_key_is_an_error_next_to_the_field(page: Page) -> None:
    page.goto("/sign-in")
    page.get_by_label("API key").fill("pk_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#sign-in-error")
    expect(error).to_contain_text("not valid")
    field = page.get_by_label("API key")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "sign-in-error")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    snap(page, "sign-in-wrong-key")
    assert_accessible(page)


def test_signing_in_lands_on_the_page_asked_for(page: Page, dashboard: Dashboard) -> None:
    page.goto("/sign-in?next=/chat")
    snap(page, "sign-in")
    assert_accessible(page)
    page.get_by_label("API key").fill(dashboard.keys["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{dashboard.url}/chat")
    expect(page.locator(".account .who")).to_have_text("alice")


def test_the_session_cookie_is_http_only_and_same_site(page: Page,
                                                      dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    cookies = [c for c in page.context.cookies() if c["name"] == "personae_session"]
    assert len(cookies) == 1
    assert cookies[0]["httpOnly"] is True and cookies[0]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("personae_session") == -1


def test_after_signing_out_the_next_page_asks_to_sign_in(page: Page,
                                                         dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "bob")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.goto("/panels")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fpanels"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
