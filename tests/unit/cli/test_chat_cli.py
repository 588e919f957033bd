"""``personae chat``, driven for real: typed lines in, a live model server behind it.

The fast tests run the command in-process (CliRunner) against a data folder whose
settings point the default provider at a loopback OpenAI-protocol server that echoes
the user's message, so a nonce in a message must come back in the streamed reply.
The slow test runs the installed ``personae`` script with the embedded model, as a
user without any provider configured would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app
from personae.providers.fake import FakeOpenAIServer

Invoke = Callable[..., Result]
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST", "PERSONAE_PORT",
           "PERSONAE_PROVIDERS", "PERSONAE_DEFAULT_PROVIDER", "PERSONAE_EMBEDDED_MODEL_PATH")
TINA_GREETING = "नमस्ते, मैं तीना कुलकर्णी हूँ।"
MOHIT_GREETING = "Hello, I'm Mohit."
EMBEDDED_TIMEOUT = 600  # seconds: model load plus one reply of up to 600 tokens


def flat(text: str) -> str:
    """Whitespace collapsed, so terminal line wrapping cannot split a phrase."""
    return " ".join(text.split())


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def chat_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             upstream: FakeOpenAIServer) -> Invoke:
    """``personae ARGS...`` on an initialised data folder whose default provider is
    the loopback server."""
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

    initialised = invoke("init")
    assert initialised.exit_code == 0, initialised.output
    return invoke


def test_chat_greets_streams_switches_lists_history_and_quits(
        chat_cli: Invoke, upstream: FakeOpenAIServer) -> None:
    nonce = f"nonce-{secrets.token_hex(6)}"
    message = f"Please repeat {nonce} for me"
    never_sent = f"late-{secrets.token_hex(6)}"
    lines = [message, "/switch mohit", "/history", "/quit", never_sent]

    result = chat_cli("chat", "tina-kulkarni", input="\n".join(lines) + "\n")

    assert result.exit_code == 0, result.output
    out = result.output
    assert "with Tina Kulkarni" in out
    greeting_at = flat(out).find(flat(TINA_GREETING))
    assert -1 < greeting_at < flat(out).find(message), out  # greeted before the first reply
    # The reply streamed back from the model server, which echoes the user's message.
    assert f"Tina Kulkarni> {message}\n" in out
    assert upstream.chat_count == 1
    assert upstream.last_request.last_user == message
    assert upstream.last_request.body.get("stream") is True
    # /switch: the other persona takes over and greets.
    assert "Now talking to Mohit (en)." in out
    assert f"Mohit> {MOHIT_GREETING}" in flat(out)
    # /history: every message so far, in order, with its persona and status.
    history = out[out.index("Now talking to Mohit"):]
    expected = [f"assistant (tina-kulkarni, complete): {flat(TINA_GREETING)}",
                f"user (tina-kulkarni, complete): {message}",
                f"assistant (tina-kulkarni, complete): {message}",
                "event (mohit, complete): switched to Mohit",
                f"assistant (mohit, complete): {MOHIT_GREETING}"]
    positions = [flat(history).find(line) for line in expected]
    assert -1 not in positions, history
    assert positions == sorted(positions)
    # /quit ended the session: the line typed after it was never sent.
    assert never_sent not in out
    assert upstream.chat_count == 1


def test_chat_greeting_is_prefixed_by_the_speaker_without_markup(chat_cli: Invoke) -> None:
    result = chat_cli("chat", "tina-kulkarni", input="/quit\n")

    assert result.exit_code == 0, result.output
    assert "[bold]" not in result.output
    assert f"Tina Kulkarni> {flat(TINA_GREETING)}" in flat(result.output)


def test_chat_with_an_unknown_persona_fails_with_an_error(
        chat_cli: Invoke, upstream: FakeOpenAIServer) -> None:
    result = chat_cli("chat", "no-such-persona", input="hello\n/quit\n")

    assert result.exit_code == 1
    assert result.stderr.startswith("error:"), result.output
    assert "no-such-persona" in result.stderr
    assert upstream.chat_count == 0


def personae_command() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("personae")
    if script.is_file():
        return [str(script)]
    found = shutil.which("personae")
    return [found] if found else [sys.executable, "-c",
                                  "from personae.cli.main import run; run()"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama_cpp is not installed (the embedded model needs it)")
def test_chat_offline_with_the_embedded_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PERSONAE_DATA_DIR"] = str(tmp_path / "data")
    command = personae_command()
    init = subprocess.run([*command, "init"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert init.returncode == 0, init.stderr

    chat = subprocess.run([*command, "chat", "tina-kulkarni"], env=env, text=True,
                          input="Hello, when is a good time to marry?\n/history\n/quit\n",
                          capture_output=True, timeout=EMBEDDED_TIMEOUT, check=False)

    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "error:" not in chat.stdout + chat.stderr
    reply = chat.stdout.split("you> Tina Kulkarni> ", 1)[1].split("\nyou> ", 1)[0]
    assert reply.strip(), chat.stdout
    # The reply was committed complete, after the greeting.
    assert flat(chat.stdout).count("assistant (tina-kulkarni, complete):") == 2, chat.stdout
