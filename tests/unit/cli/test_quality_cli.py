"""``personae test``: exit codes 0/1/2, reports, and compare, with the echoing scripted
model (with nothing queued it answers with the user's message)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app

Invoke = Callable[..., Result]
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_PROVIDERS",
           "PERSONAE_DEFAULT_PROVIDER", "PERSONAE_JUDGE_PROVIDER")
SUITE = """
name: echo
persona: tina-kulkarni
cases:
  - name: hindi
    turns: ["मेरी शादी कब होगी? कृपया बताइए।"]
    expect: [{kind: language, is: hi}, {kind: no_persona_break}]
  - name: judged
    turns: ["hello"]
    expect: [{kind: judge, rubric: Polite.}]
"""
FAILING = SUITE + """  - name: needs digits
    turns: ["no digits here"]
    expect: [{kind: regex, pattern: '\\d'}]
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONAE_PROVIDERS", json.dumps({"echo": {"kind": "scripted"},
                                                         "other": {"kind": "scripted"}}))
    monkeypatch.setenv("PERSONAE_DEFAULT_PROVIDER", "echo")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_all_cases_passing_exit_0_with_reports(cli: Invoke, tmp_path: Path) -> None:
    result = cli("test", write(tmp_path, SUITE), "--repeat", "2", "--json",
                 str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 0, result.output
    assert "passed 2/2" in result.output
    assert "skipped: no judge provider configured" in result.output
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert [c["status"] for c in report["sides"][0]["cases"]] == ["passed", "skipped"]
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("skipped") == "1"


def test_a_case_below_threshold_exits_1(cli: Invoke, tmp_path: Path) -> None:
    result = cli("test", write(tmp_path, FAILING))
    assert result.exit_code == 1, result.output
    assert "needs digits" in result.output
    assert "regex: expected match" in result.output


@pytest.mark.parametrize(("text", "args", "message"), [
    ("name: x\ncases: []\n", (), "cases"),
    ("name: x\ncases:\n  - {name: c, turns: [hi], expect: [{kind: nope}]}\n",
     ("--persona", "tina-kulkarni"), "cases[0].expect[0]"),
    (SUITE.replace("persona: tina-kulkarni\n", ""), (), "give --persona ID"),
    (SUITE, ("--models", "a"), "--models takes two names"),
    (SUITE, ("--models", "a,b", "--against-version", "1"), "not both"),
])
def test_usage_and_suite_errors_exit_2(cli: Invoke, tmp_path: Path, text: str,
                                       args: tuple[str, ...], message: str) -> None:
    result = cli("test", write(tmp_path, text), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_compare_models_shows_both_sides(cli: Invoke, tmp_path: Path) -> None:
    result = cli("test", write(tmp_path, SUITE), "--models", "echo,other:m2",
                 "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [(s["provider"], s["model"]) for s in report["sides"]] == [("echo", None),
                                                                      ("other", "m2")]
    assert report["flips"] == {}
    assert "flip" in result.output


def test_compare_against_a_version(cli: Invoke, tmp_path: Path) -> None:
    result = cli("test", write(tmp_path, SUITE), "--against-version", "1")
    assert result.exit_code == 0, result.output
    assert "v1" in result.output
