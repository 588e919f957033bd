"""Browser tests: Playwright driving Debian's Chromium against a real ``personae serve``.

Chromium is ``/usr/bin/chromium`` (``PERSONAE_CHROMIUM`` overrides); without it these
tests skip, unless ``PERSONAE_REQUIRE_BROWSER=1`` (set by scripts/test.sh) makes that a
failure. Screenshots go to ``test-artifacts/screenshots`` (``PERSONAE_ARTIFACTS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Dashboard, dashboard_server, speech_wav

CHROMIUM = Path(os.environ.get("PERSONAE_CHROMIUM", "/usr/bin/chromium"))
MICROPHONE_SAYS = "What is your favourite colour?"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("PERSONAE_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"PERSONAE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing "
                                "(apt-get install chromium)")
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp("mic") / "microphone.wav", MICROPHONE_SAYS)


@pytest.fixture(scope="session")
def browser_type_launch_args(microphone_wav: Path) -> dict[str, Any]:
    """Debian's Chromium, headless, quiet on this closed network, with a fake camera
    and a fake microphone that plays synthesised speech."""
    return {"executable_path": str(CHROMIUM), "headless": True, "args": [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}",
        "--autoplay-policy=no-user-gesture-required"]}


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """One real server for the whole browser session (tests use their own personas)."""
    with dashboard_server(tmp_path_factory.mktemp("dashboard")) as server:
        yield server


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any],
                         dashboard: Dashboard) -> dict[str, Any]:
    return {**browser_context_args, "base_url": dashboard.url,
            "viewport": {"width": 1280, "height": 900},
            "permissions": ["microphone"]}


@pytest.fixture(autouse=True)
def _timeouts(page: Page) -> None:
    page.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)
