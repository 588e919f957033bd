"""A real ``personae serve`` for the browser tests, with users, keys and a model.

The server is the product's own command, on SQLite in a temporary data folder, with
keys required (no keyless loopback), the sample personas loaded, and as its model a
real loopback server speaking OpenAI's protocol that answers in the persona's name, so
a test can tell which persona replied.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from personae.auth.principal import Role
from personae.config import Settings
from personae.providers.fake import FakeOpenAIServer
from personae.providers.fake.openai_server import last_user_message
from personae.runtime import Runtime
from tests.support.drill import provider_environment
from tests.support.servers import ServeProcess

ARTIFACTS = Path(os.environ.get("PERSONAE_ARTIFACTS", "test-artifacts")) / "screenshots"
PERSONA_NAME = re.compile(r"You are ([^.,\n]+)")
USERS = (("admin", Role.admin), ("alice", Role.member), ("bob", Role.member))


def persona_reply(body: dict[str, Any]) -> str:
    """``<persona name> heard: <the user's words>``, streamed word by word."""
    system = " ".join(str(m.get("content") or "") for m in body.get("messages") or []
                      if m.get("role") == "system")
    found = PERSONA_NAME.search(system)
    name = found.group(1).strip() if found else "someone"
    return f"{name} heard: {last_user_message(body)}"


@dataclass
class Dashboard:
    url: str
    keys: dict[str, str]
    data_dir: Path
    model: FakeOpenAIServer
    log: Path


async def _prepare(settings: Settings) -> dict[str, str]:
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.migrate()
        await runtime.load_samples()
        keys = {}
        for name, role in USERS:
            await runtime.users.create_user(name, role)
            keys[name], _ = await runtime.users.create_key(name)
        return keys
    finally:
        await runtime.close()


@contextmanager
def dashboard_server(data_dir: Path, **env: str) -> Iterator[Dashboard]:
    """Run ``personae serve`` (keys required) until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, anonymous_loopback=False)
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API owns this thread's loop
        keys = thread.submit(asyncio.run, _prepare(settings)).result()
    with FakeOpenAIServer(token_delay=0.02, reply=persona_reply) as model:
        server = ServeProcess(settings.resolved_database_url, data_dir, env={
            "PERSONAE_ANONYMOUS_LOOPBACK": "false", **provider_environment(model), **env})
        try:
            server.launch()
            server.wait_healthy(timeout=60)
            yield Dashboard(server.url, keys, data_dir, model, server.log)
        finally:
            server.stop()


def speech_wav(path: Path, text: str) -> Path:
    """Synthesised speech (espeak-ng), 16 kHz mono, followed by a second of silence: the
    fake microphone Chromium plays (it loops the file)."""
    raw = path.with_suffix(".speech.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text],
                   check=True, capture_output=True)
    audio, rate = soundfile.read(raw, dtype="float32")
    silence = np.zeros(int(rate * 1.5), dtype="float32")
    soundfile.write(path, np.concatenate([silence, audio, silence]), rate, subtype="PCM_16")
    raw.unlink()
    return path


def sign_in(page: Page, dashboard: Dashboard, who: str) -> None:
    """Sign in through the form with ``who``'s key (admin, alice or bob)."""
    page.goto("/sign-in")
    page.get_by_label("API key").fill(dashboard.keys[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/sign-in"))


def snap(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"]
           if v.get("impact") in {"serious", "critical"}]
    assert not bad, "accessibility violations:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(n.get("target", [""])[0] if isinstance(n.get("target"), list) else ""
                    for n in v.get("nodes", [])[:5]) for v in bad)


def api_call(dashboard: Dashboard, who: str, method: str, path: str, **body: Any) -> Any:
    """Call the server's API with ``who``'s key (to set a test up); a 2xx is expected."""
    response = httpx.request(method, f"{dashboard.url}{path}", json=body or None, timeout=30,
                             headers={"Authorization": f"Bearer {dashboard.keys[who]}"})
    assert response.status_code < 300, response.text
    return response.json()
