"""The new-persona form's errors in a real browser: the API derives a persona's id from
its name, and the form has no id field, so an id problem is told at the Name field (once)
instead of in the error summary under a field name the page does not show."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, sign_in


def submit_new(page: Page, dashboard: Dashboard, name: str) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/personas/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create persona").click()


def test_an_empty_form_says_only_that_the_name_is_required(page: Page,
                                                          dashboard: Dashboard) -> None:
    submit_new(page, dashboard, "")
    expect(page.locator("#f-name-error")).to_have_text("is required")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#persona-form-errors")).to_be_hidden()
    expect(page.locator("#persona-form-errors")).to_be_empty()


def test_a_name_that_makes_no_id_is_told_at_the_name(page: Page, dashboard: Dashboard) -> None:
    submit_new(page, dashboard, "🙂🙂")  # no letters or digits to make an id of
    expect(page.locator("#f-name-error")).to_have_text("gives no usable id (is required)")
    expect(page.locator("#persona-form-errors")).to_be_hidden()


def test_a_name_that_makes_a_reserved_id_is_told_at_the_name(page: Page,
                                                            dashboard: Dashboard) -> None:
    submit_new(page, dashboard, "Export")
    expect(page.locator("#f-name-error")).to_contain_text(
        "gives no usable id ('export' is a reserved word in persona URLs")
    expect(page.locator("#persona-form-errors")).to_be_hidden()
