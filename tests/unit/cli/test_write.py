"""``personae write``, driven through the real command line on an initialised data
folder whose default provider is a loopback OpenAI-protocol server: the synthesis is
answered by its schema, rewrites and drafts by a fixed post."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app
from personae.providers.fake import FakeOpenAIServer
from tests.support.writing_samples import synthesis_answer, write_samples

Invoke = Callable[..., Result]
POST = "Small releases teach us more than polished ones. Ship the scrappy one."
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_PROVIDERS",
           "PERSONAE_DEFAULT_PROVIDER", "PERSONAE_QUEUE")


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply=POST, json_reply=json.loads(synthesis_answer())) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: FakeOpenAIServer) -> Invoke:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    provider = {"kind": "openai", "base_url": upstream.base_url, "api_key": "test-key",
                "model": "fake-model", "max_retries": 0, "timeout_seconds": 10}
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONAE_PROVIDERS", json.dumps({"fake": provider}))
    monkeypatch.setenv("PERSONAE_DEFAULT_PROVIDER", "fake")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    assert invoke("init", "--no-samples").exit_code == 0
    return invoke


@pytest.fixture
def persona(cli: Invoke, tmp_path: Path) -> str:
    folder = write_samples(tmp_path / "samples")
    result = cli("write", "persona", "create", "--samples", str(folder), "--name", "Sam Lee",
                 "--goal", "hiring", "--banned", "synergy", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["version"] == 1
    assert created["definition"]["writing"]["onboarding"]["banned_words"] == ["synergy"]
    return str(created["id"])


def test_create_shows_progress_on_stderr_and_the_persona(cli: Invoke, tmp_path: Path) -> None:
    folder = write_samples(tmp_path / "posts")
    result = cli("write", "persona", "create", "--samples", str(folder), "--name", "Sam Lee")
    assert result.exit_code == 0, result.output
    assert "measuring the samples" in result.stderr
    assert "synthesis attempt 1 of 3" in result.stderr and "stored version 1" in result.stderr
    assert "local/sam-lee (version 1)" in result.stdout
    listed = cli("write", "persona", "list")
    assert "local/sam-lee" in listed.stdout


def test_validate_shows_a_meter(cli: Invoke, persona: str, tmp_path: Path) -> None:
    draft = tmp_path / "draft.txt"
    draft.write_text(POST, encoding="utf-8")
    result = cli("write", "validate", persona, "--platform", "x", str(draft))
    assert result.exit_code == 0, result.output
    assert "/280" in result.stdout and "within limits" in result.stdout
    assert "Style:" in result.stdout


def test_validate_reads_stdin_and_fails_over_the_limit(cli: Invoke, persona: str) -> None:
    result = cli("write", "validate", persona, "--platform", "x", "-", input="word " * 100)
    assert result.exit_code == 1
    assert "breaks a limit" in result.stdout and "/280" in result.stdout


def test_optimize_prints_the_best_attempt(cli: Invoke, persona: str, tmp_path: Path) -> None:
    draft = tmp_path / "draft.txt"
    draft.write_text("We shipped. " * 40, encoding="utf-8")
    result = cli("write", "optimize", persona, "--platform", "x", str(draft), "--attempts", "2")
    assert result.exit_code == 0, result.output
    assert "attempt 1" in result.stderr
    assert "/280" in result.stdout


def test_an_unknown_platform_is_one_error_line(cli: Invoke, persona: str) -> None:
    result = cli("write", "validate", persona, "--platform", "myspace", "-", input=POST)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "myspace" in result.stderr
