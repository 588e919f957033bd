"""``personae panel`` and ``personae worker``, driven through the real command line.

Each test gets an initialised data folder (SQLite, the sample personas) whose default
provider is a loopback OpenAI-protocol server. The server answers each structured
request by its schema: a topic and tone for a classification, and for scoring a score
that depends on the persona, so the tables can be checked cell by cell. Jobs run on
the default local queue, inside the CLI process that waits for them; the test at the
end runs them on Redis with ``personae worker --burst`` instead.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from personae.cli import output, panel_runtime
from personae.cli.main import app
from personae.providers.fake import FakeOpenAIServer

Invoke = Callable[..., Result]
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST", "PERSONAE_PORT",
           "PERSONAE_PROVIDERS", "PERSONAE_DEFAULT_PROVIDER", "PERSONAE_EMBEDDED_MODEL_PATH",
           "PERSONAE_QUEUE", "PERSONAE_REDIS_URL", "PERSONAE_QUEUE_NAME")
TEXT = ("Welcome back to the show. Today we cook pasta together. "
        "First boil plenty of water. Then add a fistful of salt.\n")
SCORES = {"Gen Z Listener": 4, "Brand Advertiser": 2}
PERSONAS = "genz-listener,advertiser"


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """A valid answer for whichever schema the request asks for."""
    schema = body["response_format"]["json_schema"]["schema"]
    if "tone" in schema["properties"]:
        return {"topic": "cooking", "tone": "casual"}
    if "in_character" in schema["properties"]:
        return {"in_character": True, "score": 5, "reason": "sounds like them"}
    persona_prompt = body["messages"][0]["content"]
    name = next(n for n in SCORES if n in persona_prompt)
    return {"score": SCORES[name], "opinion": f"{name} thinks it is fine"}


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(json_reply=answer) as server:
        yield server


@pytest.fixture
def panel_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              upstream: FakeOpenAIServer) -> Invoke:
    """``personae ARGS...`` on an initialised data folder, models on the loopback server."""
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

    ok(invoke("init"))
    return invoke


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "episode.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def flat(text: str) -> str:
    return " ".join(text.split())


def cells(line: str) -> list[str]:
    """The cells of one line of a Rich table."""
    return [cell.strip() for cell in re.split("[│┃]", line)]


def run_json(cli: Invoke, *args: str) -> dict[str, Any]:
    return as_json(cli("panel", "run", *args, "--json"))


def test_run_prints_a_score_table_and_a_summary(
        panel_cli: Invoke, transcript: Path, upstream: FakeOpenAIServer) -> None:
    result = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--sentences", "2"))

    out = result.stdout
    assert "episode.txt · completed · 4/4 cells finished (4 scored, 0 failed" in flat(out)
    header = next(cells(line) for line in out.splitlines() if "topic / tone" in line)
    assert header == ["#", "topic / tone", "text", "genz-listener", "advertiser"]
    rows = [cells(line) for line in out.splitlines() if "cooking / casual" in line]
    assert rows == [["0", "cooking / casual", "Welcome back to the show. Today we cook pasta "
                     "together.", "4", "2"],
                    ["1", "cooking / casual", "First boil plenty of water. Then add a fistful "
                     "of salt.", "4", "2"]]
    summary = {row[0]: row for row in map(cells, out.splitlines()) if "v1" in row}
    assert summary["genz-listener"][3:] == ["4.00", "2", "1:0 2:0 3:0 4:2 5:0", "0", "0"]
    assert summary["advertiser"][3:] == ["2.00", "2", "1:0 2:2 3:0 4:0 5:0", "0", "0"]
    assert "Run them again" not in out
    assert upstream.chat_count == 2 + 4  # two classifications, four scores


def test_run_json_has_one_card_per_persona_per_segment(
        panel_cli: Invoke, transcript: Path) -> None:
    found = run_json(panel_cli, str(transcript), "--personas", PERSONAS, "--sentences", "2",
                     "--adherence")

    assert found["status"] == "completed"
    assert [p["id"] for p in found["personas"]] == ["genz-listener", "advertiser"]
    assert [s["index"] for s in found["segments"]] == [0, 1]
    for segment in found["segments"]:
        assert segment["classification"]["topic"] == "cooking"
        cards = {c["persona_id"]: c for c in segment["cards"]}
        assert sorted(cards) == ["advertiser", "genz-listener"]
        assert cards["genz-listener"]["score"] == 4 and cards["advertiser"]["score"] == 2
        assert cards["advertiser"]["adherence"]["in_character"] is True
    assert found["aggregates"]["personas"]["genz-listener"]["mean"] == 4
    assert found["progress"]["cells"]["done"] == 4


def test_show_list_and_export(panel_cli: Invoke, transcript: Path, tmp_path: Path) -> None:
    evaluation_id = run_json(panel_cli, str(transcript), "--personas", PERSONAS,
                             "--sentences", "2", "--title", "Pasta night")["id"]

    shown = ok(panel_cli("panel", "show", evaluation_id)).stdout
    assert f"Evaluation {evaluation_id} · Pasta night · completed" in flat(shown)
    assert "genz-listener" in shown and "advertiser" in shown
    assert as_json(panel_cli("panel", "show", evaluation_id, "--json"))["id"] == evaluation_id

    listed = ok(panel_cli("panel", "list")).stdout
    row = next(line for line in listed.splitlines() if evaluation_id in line)
    assert "Pasta night" in row and "completed" in row and "4/4" in row
    assert [e["id"] for e in as_json(panel_cli("panel", "list", "--json"))] == [evaluation_id]

    target = tmp_path / "out.csv"
    ok(panel_cli("panel", "export", evaluation_id, "--format", "csv", "-o", str(target)))
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {(r["persona_id"], r["score"]) for r in rows} == {("genz-listener", "4"),
                                                             ("advertiser", "2")}
    exported = as_json(panel_cli("panel", "export", evaluation_id, "--format", "json"))
    assert len(exported["segments"]) == 2


def test_stdin_with_explicit_format(panel_cli: Invoke) -> None:
    content = json.dumps([{"text": "Hello there.", "start": 0, "end": 1.5},
                          {"text": "Buy our product.", "start": 1.5, "end": 4}])

    result = ok(panel_cli("panel", "run", "-", "--format", "json", "--personas",
                          "advertiser", "--no-classify", "--title", "Ad read",
                          input=content))

    assert "0:00.0–0:01.5" in result.stdout and "0:01.5–0:04.0" in result.stdout
    assert "topic / tone" not in result.stdout
    assert "Ad read" in ok(panel_cli("panel", "list")).stdout


def test_failing_upstream_completes_with_failed_cells_and_a_rerun_hint(
        panel_cli: Invoke, transcript: Path, upstream: FakeOpenAIServer) -> None:
    upstream.fail_always(500)

    result = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--sentences", "2"))

    out = flat(result.stdout)
    evaluation_id = re.search(r"Evaluation ([0-9a-f]{16})", out).group(1)
    assert "completed · 4/4 cells finished (0 scored, 4 failed" in out
    assert "4 cells failed:" in out
    assert f"Run them again: personae panel rerun {evaluation_id}" in out
    assert "Traceback" not in result.output

    upstream.reset(json_reply=answer)
    rerun = ok(panel_cli("panel", "rerun", evaluation_id, "--json"))
    found = json.loads(rerun.stdout)
    assert found["status"] == "completed"
    assert found["progress"]["cells"] == {"pending": 0, "running": 0, "done": 4, "failed": 0,
                                          "cancelled": 0}
    nothing = ok(panel_cli("panel", "rerun", evaluation_id))
    assert "Nothing to run again" in nothing.output


def test_unknown_persona_is_an_error_without_traceback(
        panel_cli: Invoke, transcript: Path, upstream: FakeOpenAIServer) -> None:
    result = panel_cli("panel", "run", str(transcript), "--personas", "genz-listener,no-such")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: persona 'no-such' not found"), result.output
    assert "Traceback" not in result.output
    assert upstream.chat_count == 0
    assert as_json(panel_cli("panel", "list", "--json")) == []


@pytest.mark.parametrize("args", [("--panel", "p", "--personas", "advertiser"), ()])
def test_panel_and_personas_are_one_or_the_other(
        panel_cli: Invoke, transcript: Path, args: tuple[str, ...]) -> None:
    result = panel_cli("panel", "run", str(transcript), *args)

    assert result.exit_code == 2
    assert "--panel NAME or --personas" in result.output


def test_missing_evaluation_and_file_are_errors(panel_cli: Invoke, tmp_path: Path) -> None:
    shown = panel_cli("panel", "show", "nope")
    assert shown.exit_code == 1
    assert shown.stderr.startswith("error: evaluation 'nope' not found")
    missing = panel_cli("panel", "run", str(tmp_path / "none.txt"), "--personas", "advertiser")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error:") and "none.txt" in missing.stderr


def test_saved_panel_is_used_by_run(panel_cli: Invoke, transcript: Path,
                                    tmp_path: Path, upstream: FakeOpenAIServer) -> None:
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("scale_min: 1\nscale_max: 10\nanchors: {1: bad, 10: great}\n",
                      encoding="utf-8")
    created = ok(panel_cli("panel", "create", "podcast", "--personas", PERSONAS,
                           "--description", "Weekly show", "--rubric", str(rubric),
                           "--no-classify"))
    assert "Saved panel 'podcast'" in created.stdout
    saved = ok(panel_cli("panel", "saved")).stdout
    assert "podcast" in saved and "genz-listener, advertiser" in saved
    duplicate = panel_cli("panel", "create", "podcast", "--personas", "advertiser")
    assert duplicate.exit_code == 1 and "already have a panel named" in duplicate.stderr

    found = run_json(panel_cli, str(transcript), "--panel", "podcast", "--sentences", "2")

    assert found["panel_id"] is not None and found["classify"] is False
    assert found["rubric"]["scale_max"] == 10
    assert [p["id"] for p in found["personas"]] == ["genz-listener", "advertiser"]
    assert upstream.chat_count == 4  # no classification requests
    ok(panel_cli("panel", "delete-panel", "podcast"))
    assert as_json(panel_cli("panel", "saved", "--json")) == []


def test_invalid_panel_lists_each_issue(panel_cli: Invoke, tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.json"
    rubric.write_text(json.dumps({"scale_min": 5, "scale_max": 1}), encoding="utf-8")

    result = panel_cli("panel", "create", "bad", "--personas", "advertiser",
                       "--rubric", str(rubric))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid panel")
    assert "scale_max must be greater than scale_min" in result.stderr


def test_ctrl_c_keeps_the_evaluation_and_wait_finishes_it(
        panel_cli: Invoke, transcript: Path, upstream: FakeOpenAIServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    upstream.latency = 1.0  # nothing finishes before the first poll

    async def interrupt() -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(panel_runtime, "pause", interrupt)
        result = panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                           "--sentences", "2")

    assert result.exit_code == 130, result.output
    evaluation_id = re.search(r"evaluation ([0-9a-f]{16}) is still running",
                              flat(result.stderr)).group(1)
    assert f"personae panel wait {evaluation_id}" in flat(result.stderr)
    assert as_json(panel_cli("panel", "show", evaluation_id, "--json"))["status"] == "running"

    upstream.latency = 0.0
    finished = json.loads(ok(panel_cli("panel", "wait", evaluation_id, "--json")).stdout)
    assert finished["status"] == "completed"
    assert finished["progress"]["cells"]["done"] == 4


def test_no_wait_then_cancel(panel_cli: Invoke, transcript: Path) -> None:
    queued = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--no-wait", "--json"))
    evaluation_id = json.loads(queued.stdout)["id"]
    assert f"personae panel wait {evaluation_id}" in flat(queued.stderr)

    cancelled = ok(panel_cli("panel", "cancel", evaluation_id))
    assert f"Cancelled {evaluation_id}" in cancelled.stdout
    assert "already cancelled" in ok(panel_cli("panel", "cancel", evaluation_id)).stdout
    ok(panel_cli("panel", "delete", evaluation_id, "--yes"))
    assert panel_cli("panel", "show", evaluation_id).exit_code == 1


def test_progress_bar_on_a_terminal(panel_cli: Invoke, transcript: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "err_console",
                        Console(stderr=True, force_terminal=True, width=100))

    result = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--sentences", "2"))

    assert "4/4" in result.stderr and "0 failed" in result.stderr


def test_worker_needs_the_arq_queue(panel_cli: Invoke,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    result = panel_cli("worker", "--burst")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: personae worker runs panel jobs from Redis")
    assert "PERSONAE_QUEUE=arq" in result.stderr and "Traceback" not in result.output

    monkeypatch.setenv("PERSONAE_QUEUE", "arq")
    result = panel_cli("worker")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: PERSONAE_REDIS_URL is required")


def test_run_on_redis_with_a_burst_worker(panel_cli: Invoke, transcript: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          redis_url: str) -> None:
    monkeypatch.setenv("PERSONAE_QUEUE", "arq")
    monkeypatch.setenv("PERSONAE_REDIS_URL", redis_url)
    queued = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--sentences", "2", "--no-wait", "--json"))
    evaluation_id = json.loads(queued.stdout)["id"]
    assert "queued for `personae worker` processes" in flat(queued.stderr)

    ok(panel_cli("worker", "--burst", "--concurrency", "2"))

    found = as_json(panel_cli("panel", "wait", evaluation_id, "--json"))
    assert found["status"] == "completed"
    assert found["progress"]["cells"]["done"] == 4


def test_rerun_after_cancelling_before_classification_completes(
        panel_cli: Invoke, transcript: Path, upstream: FakeOpenAIServer) -> None:
    upstream.latency = 1.0  # the process exits before any segment is classified
    queued = ok(panel_cli("panel", "run", str(transcript), "--personas", PERSONAS,
                          "--sentences", "2", "--no-wait", "--json"))
    evaluation_id = json.loads(queued.stdout)["id"]
    ok(panel_cli("panel", "cancel", evaluation_id))
    upstream.latency = 0.0

    rerun = panel_cli("panel", "rerun", evaluation_id, "--include-cancelled", "--json")

    assert rerun.exit_code == 0, rerun.output
    found = json.loads(rerun.stdout)
    assert found["status"] == "completed"
    assert found["progress"]["cells"]["done"] == 4
