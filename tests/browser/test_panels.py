"""Panels in a real browser: start an evaluation, watch it finish, read every card.

The server's model answers each structured request with a minimal instance of the
schema asked for, so every cell is scored (with the scale's lowest score).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, assert_accessible, sign_in, snap

GENZ, ADVERTISER = "genz-listener", "advertiser"
SRT = ("1\n00:00:01,000 --> 00:00:02,500\nHello there, listeners.\n\n"
       "2\n00:00:03,000 --> 00:00:04,250\nWelcome to the show.\n")


def evaluate_as(dashboard: Dashboard, who: str, **body: Any) -> str:
    """Start an evaluation with ``who``'s key; its id."""
    response = httpx.post(f"{dashboard.url}/v1/evaluations", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {dashboard.keys[who]}"})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def expect_finished(page: Page, cards: int) -> None:
    """The progress bar at its end, then the cards and the chart."""
    bar = page.locator("#evaluation-progress")
    expect(page.locator("#evaluation-status")).to_have_text("completed")
    expect(bar).to_have_attribute("value", str(cards))
    expect(bar).to_have_attribute("max", str(cards))
    expect(page.locator("article.cell")).to_have_count(cards)
    expect(page.locator("article.cell.failed")).to_have_count(0)


def test_paste_choose_two_personas_and_see_every_card(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/panels")
    expect(page.get_by_role("heading", level=1)).to_have_text("Panels")
    snap(page, "panels")
    assert_accessible(page)
    page.get_by_label("Title").fill("Pasted for two personas")
    page.get_by_label("Paste the transcript").fill(
        "Coffee starts the day. Three cups by noon. The dentist disagrees. Tea is kinder.")
    page.get_by_label("Sentences per segment").fill("2")
    page.locator(f'input[name="personas"][value="{GENZ}"]').check()
    page.locator(f'input[name="personas"][value="{ADVERTISER}"]').check()
    dashboard.model.latency = 0.4  # slow enough to see the evaluation run
    try:
        page.get_by_role("button", name="Start evaluation").click()
        expect(page).to_have_url(re.compile(r"/panels/[0-9a-f]+$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Pasted for two personas")
        expect(page.locator("#evaluation-status")).to_have_text("running")
        expect(page.locator("#progress-text")).to_contain_text("of 4 cells finished")
        expect_finished(page, cards=2 * 2)
    finally:
        dashboard.model.latency = 0.0
    expect(page.locator("svg.chart rect.bar")).to_have_count(2)
    expect(page.locator("svg.chart title")).to_have_count(2)
    expect(page.locator("table.panels-aggregates tbody tr")).to_have_count(2)
    snap(page, "panels-evaluation")
    assert_accessible(page)


def test_upload_an_srt_file(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/panels")
    page.get_by_label("Or upload a file").set_input_files(
        {"name": "upload-test.srt", "mimeType": "application/x-subrip", "buffer": SRT.encode()})
    page.locator(f'input[name="personas"][value="{GENZ}"]').check()
    page.get_by_role("button", name="Start evaluation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("upload-test.srt")
    expect_finished(page, cards=2)
    expect(page.get_by_role("heading", name=re.compile(r"Segment 1 \(0:01\.0–0:02\.5\)")))\
        .to_be_visible()
    expect(page.locator(".segment-text").first).to_have_text("Hello there, listeners.")
    snap(page, "panels-srt")


def test_an_upload_error_is_shown_next_to_the_file(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/panels")
    page.get_by_label("Or upload a file").set_input_files(
        {"name": "latin.txt", "mimeType": "text/plain", "buffer": "Café olé.".encode("latin-1")})
    page.locator(f'input[name="personas"][value="{GENZ}"]').check()
    page.get_by_role("button", name="Start evaluation").click()
    error = page.locator("#evaluation-file-error")
    expect(error).to_have_text("the file must be UTF-8 text")
    expect(page.get_by_label("Or upload a file")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/panels$"))
    snap(page, "panels-upload-error")


def test_no_transcript_is_asked_for_before_anything_is_sent(page: Page,
                                                            dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "alice")
    page.goto("/panels")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if "/v1/evaluations" in request.url else None)
    page.get_by_label("Paste the transcript").fill("  \n ")
    page.locator(f'input[name="personas"][value="{GENZ}"]').check()
    page.get_by_role("button", name="Start evaluation").click()
    expect(page.locator("#evaluation-content-error")).to_have_text(
        "Paste a transcript or choose a file")
    expect(page.get_by_label("Paste the transcript")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Paste the transcript")).to_be_focused()
    expect(page.locator("#evaluation-form-error")).to_be_hidden()
    assert sent == []
    expect(page).to_have_url(re.compile(r"/panels$"))


def test_export_link_downloads_csv(page: Page, dashboard: Dashboard) -> None:
    eid = evaluate_as(dashboard, "alice", content="Export me. Then count my rows.",
                      personas=[GENZ, ADVERTISER], title="export-test")
    sign_in(page, dashboard, "alice")
    page.goto(f"/panels/{eid}")
    expect_finished(page, cards=2)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename == f"evaluation-{eid}.csv"
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
    assert sorted(row["persona_id"] for row in rows) == [ADVERTISER, GENZ]
    assert {row["status"] for row in rows} == {"done"}


def test_another_users_evaluation_is_the_404_page(page: Page, dashboard: Dashboard) -> None:
    eid = evaluate_as(dashboard, "alice", content="Only for Alice.", personas=[GENZ],
                      title="alice-only-test")
    sign_in(page, dashboard, "bob")
    response = page.goto(f"/panels/{eid}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not found")
    expect(page.get_by_text("alice-only-test")).to_have_count(0)
    snap(page, "panels-not-found")
    assert_accessible(page)
