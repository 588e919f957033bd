"""``personae personas import-lorebook`` and ``personae chat --user-name``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app
from tests.support.lore import CHARACTER_BOOK, WORLD_INFO

Invoke = Callable[..., Result]
WREN = {"id": "wren", "name": "Wren", "greetings": ["Hello, {{user}}. I am {{char}}."],
        "knowledge": [{"content": "plain note"}, {"content": "old lore", "keys": ["old"]}]}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``personae ARGS...`` on an empty data folder under ``tmp_path``, with Wren."""
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_PROVIDERS",
                 "PERSONAE_DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    ok(invoke("init", "--no-samples"))
    ok(invoke("personas", "create", "-", input=json.dumps(WREN)))
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_import_lorebook_adds_entries_and_prints_warnings(cli: Invoke, tmp_path: Path) -> None:
    result = ok(cli("personas", "import-lorebook", write(tmp_path, "skerra.json", WORLD_INFO),
                    "--to", "local/wren"))
    assert "Added 5 lore entries from world-info to local/wren (version 2)." in result.stdout
    assert "inclusion groups" in result.stderr
    shown = json.loads(ok(cli("personas", "show", "local/wren", "--json")).stdout)
    assert len(shown["definition"]["knowledge"]) == 7


def test_import_lorebook_replace_as_json(cli: Invoke, tmp_path: Path) -> None:
    result = ok(cli("personas", "import-lorebook", write(tmp_path, "book.json", CHARACTER_BOOK),
                    "--to", "local/wren", "--replace", "--json"))
    body = json.loads(result.stdout)
    assert (body["entries_added"], body["source_format"]) == (4, "character-book")
    contents = [k["content"] for k in body["persona"]["definition"]["knowledge"]]
    assert contents[0] == "plain note" and "old lore" not in contents


def test_a_persona_file_is_not_a_lorebook(cli: Invoke, tmp_path: Path) -> None:
    result = cli("personas", "import-lorebook", write(tmp_path, "wren.json", WREN),
                 "--to", "local/wren")
    assert result.exit_code == 1
    assert "persona file, not a lorebook" in result.stderr


def test_a_lorebook_imported_as_a_persona_names_the_command(cli: Invoke, tmp_path: Path) -> None:
    result = cli("personas", "import", write(tmp_path, "skerra.json", WORLD_INFO))
    assert result.exit_code == 1
    assert "personae personas import-lorebook FILE --to ID" in " ".join(result.stderr.split())


def test_chat_greets_the_user_by_name(cli: Invoke) -> None:
    result = ok(cli("chat", "local/wren", "--user-name", "Ana", input="/quit\n"))
    assert "Wren> Hello, Ana. I am Wren." in result.output
    plain = ok(cli("chat", "local/wren", input="/quit\n"))
    assert "Wren> Hello, User. I am Wren." in plain.output
    assert cli("chat", "local/wren", "--user-name", "  ").exit_code == 2
