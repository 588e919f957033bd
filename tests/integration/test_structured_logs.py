"""``personae serve`` with ``PERSONAE_LOG_FORMAT=json``: every line on standard error is
a JSON object; one ``request`` line per HTTP request carries its request id, caller,
route template, status and duration; a turn's ``turn.finished`` line carries its ids;
no line shows a key or what was said."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from personae.auth.principal import Role
from personae.config import Settings
from personae.runtime import Runtime
from tests.conftest import sqlite_url_for
from tests.support.personas import MOHIT
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

GIVEN_ID = "trace-7.a:b_c"
SECRET_WORDS = "my private nonce-4471 words"
BAD_KEY = "pk_not-a-real-key-0123456789abcdef"


@dataclass
class Served:
    key: str
    user_id: str
    session_id: str
    text: str  # everything the server wrote to standard error
    lines: list[dict[str, Any]]


async def _alice(settings: Settings) -> tuple[str, str]:
    runtime = await Runtime.open(settings, watch=False)
    try:
        user = await runtime.users.create_user("alice", Role.member)
        key, _ = await runtime.users.create_key("alice")
        await runtime.personas.create(await runtime.auth.local_admin(), MOHIT,
                                      global_scope=True)
        return key, user.id
    finally:
        await runtime.close()


def _requests(url: str, key: str) -> str:
    """The traffic the tests read back; returns the session it talked in."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/personas/mohit", headers={
            **auth, "X-Request-ID": GIVEN_ID}).status_code == 200
        assert client.get("/v1/me", headers=auth).status_code == 200
        assert client.get(f"/v1/personas/mohit?api_key={key}").status_code == 200
        assert client.get("/v1/me", headers={
            "Authorization": f"Bearer {BAD_KEY}"}).status_code == 401
        opened = client.post("/v1/sessions", json={"persona_id": "mohit"}, headers=auth)
        assert opened.status_code == 201, opened.text
        session_id: str = opened.json()["session"]["id"]
        sent = client.post(f"/v1/sessions/{session_id}/messages",
                           json={"content": SECRET_WORDS}, headers=auth)
        assert sent.status_code == 200, sent.text
        assert SECRET_WORDS in sent.json()["reply"]["content"]  # the scripted echo
    return session_id


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    data = tmp_path_factory.mktemp("structured-logs")
    database = sqlite_url_for(data)
    key, user_id = asyncio.run(_alice(Settings(data_dir=data, database_url=database)))
    port, errors = free_port(), data / "stderr.log"
    environment = {**os.environ, "PERSONAE_DATABASE_URL": database,
                   "PERSONAE_DATA_DIR": str(data), "PERSONAE_LOG_FORMAT": "json",
                   "PERSONAE_LOG_LEVEL": "info", "PERSONAE_DEFAULT_PROVIDER": "scripted",
                   "PERSONAE_PROVIDERS": json.dumps({"scripted": {"kind": "scripted"}})}
    with errors.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "personae", "serve", "--host", "127.0.0.1",
             "--port", str(port)], env=environment, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, errors)
        session_id = _requests(url, key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    text = errors.read_text(encoding="utf-8", errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return Served(key, user_id, session_id, text, lines)


def _access(served: Served) -> list[dict[str, Any]]:
    return [line for line in served.lines if line.get("event") == "request"]


def test_every_line_is_a_json_object_with_time_level_and_logger(served: Served) -> None:
    assert served.lines, "the server wrote nothing"
    for line in served.lines:
        assert isinstance(line, dict)
        assert {"event", "level", "logger", "timestamp"} <= line.keys()
        assert line["timestamp"].endswith("Z")  # ISO 8601, UTC


def test_one_access_line_per_request_with_the_given_id(served: Served) -> None:
    given = [line for line in _access(served) if line.get("request_id") == GIVEN_ID]
    assert len(given) == 1
    line = given[0]
    assert line["user_id"] == served.user_id
    assert line["method"] == "GET" and line["status"] == 200
    assert line["route"].startswith("/v1/personas/{persona_id")  # the template, not the id
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1"


def test_requests_without_an_id_get_a_new_one(served: Served) -> None:
    me = [line for line in _access(served) if line.get("route") == "/v1/me"
          and line["status"] == 200]
    assert len(me) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", me[0]["request_id"])
    assert me[0]["user_id"] == served.user_id
    refused = [line for line in _access(served) if line.get("status") == 401]
    assert len(refused) == 1 and refused[0]["user_id"] is None
    health = [line for line in _access(served) if line.get("route") == "/health"]
    assert health  # the readiness polls are requests too
    ids = [line["request_id"] for line in _access(served)]
    assert len(ids) == len(set(ids))


def test_a_turn_logs_its_ids_outcome_and_counts(served: Served) -> None:
    turns = [line for line in served.lines if line.get("event") == "turn.finished"]
    assert len(turns) == 1
    turn = turns[0]
    assert turn["session_id"] == served.session_id
    assert (turn["persona_id"], turn["persona_version"]) == ("mohit", 1)
    assert turn["provider"] == "scripted" and turn["status"] == "complete"
    assert turn["prompt_tokens"] > 0 and turn["completion_tokens"] > 0
    assert turn["response_ms"] >= turn["time_to_first_token_ms"] >= 0
    assert turn["error_code"] is None


def test_no_key_and_no_message_content_in_any_line(served: Served) -> None:
    assert served.key not in served.text and served.key[3:] not in served.text
    assert "nonce-4471" not in served.text
    assert BAD_KEY not in served.text and BAD_KEY[3:] not in served.text
    assert "api_key=" not in served.text  # the query string is never logged
