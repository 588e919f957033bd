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


def test_an_unknown_platform_is_one_error_line_and_status_2(cli: Invoke, persona: str) -> None:
    result = cli("write", "validate", persona, "--platform", "myspace", "-", input=POST)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "myspace" in result.stderr
    empty = cli("write", "validate", persona, "--platform", "x", "-", input="   ")
    assert empty.exit_code == 2 and "error: invalid draft" in empty.stderr
    for command in (("optimize", persona, "-"), ("draft", persona, "--topic", "x")):
        failed = cli("write", *command, "--platform", "myspace", input=POST)
        assert failed.exit_code == 2, failed.output


def test_optimize_exits_1_when_the_result_still_breaks_a_hard_limit(
        cli: Invoke, persona: str, upstream: FakeOpenAIServer) -> None:
    upstream.reply = "We shipped it. " * 30  # 450 characters, whatever was asked
    result = cli("write", "optimize", persona, "--platform", "x", "-", "--attempts", "2",
                 input="We shipped. " * 40)
    assert result.exit_code == 1, result.output
    assert "over" in result.stderr and "breaks a limit" in result.stdout
    drafted = cli("write", "draft", persona, "--platform", "x", "--topic", "shipping",
                  "--attempts", "1")
    assert drafted.exit_code == 1, drafted.output


def test_meters_show_soft_guides_as_recommendations_and_thousands(
        cli: Invoke, persona: str) -> None:
    tagged = cli("write", "validate", persona, "--platform", "x", "-",
                 input=POST + " #ship #small #teams")
    assert "hashtags 3 (2 recommended)" in tagged.stdout and "3/2" not in tagged.stdout
    long = cli("write", "validate", persona, "--platform", "linkedin", "-",
               input="Ship small things often. " * 140)
    assert long.exit_code == 1
    assert "text 3,500/3,000" in long.stdout and "see more after 210" in long.stdout


def test_a_draft_in_another_language_is_not_scored(cli: Invoke, persona: str) -> None:
    french = ("Nous avons lanc\u00e9 le nouveau parcours cette semaine et les premiers "
              "chiffres sont bons. Les clients terminent plus vite et posent moins de "
              "questions. Nous continuons avec la m\u00eame \u00e9quipe.")
    result = cli("write", "validate", persona, "--platform", "x", "-", input=french)
    assert "Style: not scored." in result.stdout and "/100" not in result.stdout


def test_persona_show_prints_habits_and_synthesis_readably(cli: Invoke, persona: str) -> None:
    result = cli("write", "persona", "show", persona)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in ("Measured: 4 samples", "  confidence: low", "  sentences: median ",
                 "  per post: hashtags 0.0, emoji 0.0", "  readability: ", "Synthesis: "):
        assert line in out, out
    assert "{" not in out and "[" not in out  # no raw JSON


def test_synthesis_is_shown_with_its_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    from personae.cli.write import _show_synthesis
    from personae.personas.writing_block import Claim, Synthesis, ToneRange

    _show_synthesis(Synthesis(
        status="ok", attempts=1, identity=Claim(text="A plain writer.", evidence=["Ship it."]),
        tones=ToneRange(default="direct", permitted=["warm"], forbidden=["sarcastic"]),
        constraints=[Claim(text="Never uses exclamation marks.", evidence=["We did."])]))

    out = capsys.readouterr().out
    assert "identity: A plain writer." in out and '"Ship it."' in out
    assert "tones: direct by default; also warm; forbidden: sarcastic" in out
    assert "constraint: Never uses exclamation marks." in out and '"We did."' in out


def test_help_uses_plain_placeholders(cli: Invoke) -> None:
    for command in (("validate",), ("optimize",), ("draft",), ("persona", "create"),
                    ("persona", "regenerate")):
        options = cli("write", *command, "--help").stdout.partition("Options:")[2]
        assert "<str>" not in options and "<int range>" not in options, options
    created = " ".join(cli("write", "persona", "create", "--help").stdout.split())
    assert "the persona's" not in created and "default provider" in created


def test_bad_samples_are_reported_as_samples(cli: Invoke, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("write", "persona", "create", "--samples", str(empty), "--name", "Sam")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid samples"), result.stderr
    short = write_samples(tmp_path / "short", ("Too short to measure, thirty words or so.",))
    few = cli("write", "persona", "create", "--samples", str(short), "--name", "Sam")
    assert few.exit_code == 2 and "at least 50 are needed" in few.stderr, few.output


def test_attempts_help_names_the_apis_max_attempts(cli: Invoke) -> None:
    result = cli("write", "draft", "--help")
    assert result.exit_code == 0 and "max_attempts" in result.stdout


def test_platforms_show_hashtag_caps_the_fold_and_links(cli: Invoke) -> None:
    shown = cli("write", "platforms").stdout
    rows = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
    assert "at most 5" in rows["instagram"]
    assert "after 210" in rows["linkedin"] and "23 each" in rows["x"]
    assert "2 recommended" in rows["x"]


def test_regenerate_says_when_nothing_changed(cli: Invoke, persona: str) -> None:
    result = cli("write", "persona", "regenerate", persona)
    assert result.exit_code == 0, result.output
    assert "unchanged: still version 1" in result.stderr
