"""Persona tests in a real browser: run a sample persona's shipped suite and see its
live progress and pass rate, open the run's cases; another user's run and writing
persona are the 404 page.

The server's model answers "<Persona Name> heard: <text>", so which cases pass is the
suite's business; the page must show the run's figures as the API gives them.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, api_call, assert_accessible, sign_in, snap
from tests.support.writing_samples import SAMPLES

PASS_RATE = re.compile(r"Pass rate: (\d+% \(\d/\d cases\)|all skipped)")
SUITE = {"name": "alice-only-suite", "cases": [
    {"name": "replies", "turns": ["hello"], "expect": [{"kind": "length", "min_words": 1}]}]}



def test_run_a_personas_suite_and_see_the_pass_rate(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/tests")
    expect(page.get_by_role("heading", level=1)).to_have_text("Persona tests")
    snap(page, "tests")
    assert_accessible(page)
    page.get_by_label("Persona").select_option("genz-listener")
    expect(page).to_have_url(re.compile(r"/tests\?persona=genz-listener$"))
    expect(page.locator("#suite-found")).to_contain_text("genz-listener basics")
    dashboard.model.latency = 0.2  # slow enough to see the run going
    try:
        page.get_by_role("button", name="Run the tests").click()
        expect(page.locator("#run-progress")).to_be_visible()
        message = page.locator("#run-message")
        expect(message).to_contain_text("of 3 repetitions")
        expect(message).to_contain_text(PASS_RATE)
    finally:
        dashboard.model.latency = 0.0
    expect(page.locator("#run-progress")).to_have_attribute("value", "3")
    row = page.locator("#runs-body tr").first
    expect(row).to_contain_text("genz-listener basics")
    expect(row.locator('[data-cell="status"]')).to_have_text("completed")
    expect(row.locator('[data-cell="rate"]')).to_contain_text("cases")
    snap(page, "tests-run-finished")
    message.get_by_role("link", name="See each case").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("genz-listener basics")
    expect(page.locator("table.cases tbody tr")).to_have_count(3)
    expect(page.get_by_text("No other completed run")).to_be_visible()
    snap(page, "tests-run")
    assert_accessible(page)


def test_another_users_run_and_writing_persona_are_404_pages(page: Page,
                                                            dashboard: Dashboard) -> None:
    run = api_call(dashboard, "alice", "POST", "/v1/personas/tina-kulkarni/tests/run", suite=SUITE)
    writer = api_call(dashboard, "alice", "POST", "/v1/writing/personas", name="Alice Only Voice",
                  samples=list(SAMPLES))
    sign_in(page, dashboard, "bob")
    for path in (f"/tests/{run['id']}", f"/writing/{writer['id']}"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_contain_text("Not found")
        expect(page.locator("main")).not_to_contain_text("Alice Only Voice")
    snap(page, "tests-404")
    assert_accessible(page)
