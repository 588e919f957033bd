"""The ``personae`` command line against a real SQLite database in a temporary folder."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from personae.cli import serve as serve_module
from personae.cli.main import app

Invoke = Callable[..., Result]

BOB = """\
id: bob
name: Bob Builder
description: Fixes things.
greetings: ["Hi there!"]
tags: [tools]
"""
BAD = """\
id: bad
name: Bad
greetings: [""]
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``personae ARGS...`` with its data folder under ``tmp_path``."""
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST",
                 "PERSONAE_PORT", "EDITOR", "VISUAL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return invoke


@pytest.fixture
def ready(cli: Invoke) -> Invoke:
    """A CLI whose database is initialised with the samples."""
    ok(cli("init"))
    return cli


@pytest.fixture
def bob_file(tmp_path: Path) -> Path:
    path = tmp_path / "bob.yaml"
    path.write_text(BOB, encoding="utf-8")
    return path


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def test_init_loads_samples_and_is_repeatable(cli: Invoke) -> None:
    first = ok(cli("init"))
    assert "created" in first.output and "Next steps" in first.output
    assert "tina-kulkarni" in ok(cli("personas", "list")).output
    again = ok(cli("init"))
    assert "0 created, 0 updated, 7 unchanged" in again.output


def test_init_without_samples_leaves_store_empty(cli: Invoke) -> None:
    ok(cli("init", "--no-samples"))
    assert as_json(cli("personas", "list", "--json"))["count"] == 0


def test_create_from_yaml_then_show_json(ready: Invoke, bob_file: Path) -> None:
    # The CLI acts as the local admin, user "local": its personas are in "local/".
    assert "Created local/bob" in ok(ready("personas", "create", str(bob_file))).output
    shown = as_json(ready("personas", "show", "local/bob", "--json"))
    assert shown["version"] == 1
    assert shown["visibility"] == "private"
    assert shown["definition"]["greetings"] == ["Hi there!"]


def test_create_global_from_stdin(ready: Invoke) -> None:
    ok(ready("personas", "create", "-", "--global", input='{"name": "Stdin Sam"}'))
    shown = as_json(ready("personas", "show", "stdin-sam", "--json"))
    assert shown["scope"] == "global"


def test_create_rejects_two_scopes(ready: Invoke, bob_file: Path) -> None:
    result = ready("personas", "create", str(bob_file), "--global", "--private")
    assert result.exit_code == 2


def test_create_invalid_lists_each_issue(ready: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    result = ready("personas", "create", str(bad))
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "  greetings[0]: must not be empty" in result.stderr


def test_validate_reports_field_paths(cli: Invoke, tmp_path: Path, bob_file: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    result = cli("personas", "validate", str(bob_file), str(bad))
    assert result.exit_code == 1
    assert f"{bad}: greetings[0]: must not be empty" in result.output
    assert ok(cli("personas", "validate", str(bob_file))).exit_code == 0
    assert not (tmp_path / "data").exists()  # no database needed


def test_validate_folder_and_duplicate_ids(cli: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "a.yaml").write_text(BOB, encoding="utf-8")
    (folder / "b.json").write_text(json.dumps({"id": "bob", "name": "Bob"}), encoding="utf-8")
    result = cli("personas", "validate", str(folder))
    assert result.exit_code == 1
    assert "id 'bob' is also defined in" in result.output


def test_sync_twice_is_idempotent(ready: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "bob.yaml").write_text(BOB, encoding="utf-8")
    (folder / "ann.yaml").write_text("name: Ann\n", encoding="utf-8")
    first = as_json(ready("personas", "sync", str(folder), "--json"))
    assert sorted(first["created"]) == ["ann", "bob"] and first["applied"]
    second = ok(ready("personas", "sync", str(folder)))
    assert "0 created, 0 updated, 2 unchanged, 0 invalid" in second.output


def test_sync_with_invalid_file_applies_nothing(ready: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "bob.yaml").write_text(BOB, encoding="utf-8")
    (folder / "bad.yaml").write_text(BAD, encoding="utf-8")
    result = ready("personas", "sync", str(folder))
    assert result.exit_code == 1
    assert "bad.yaml: greetings[0]: must not be empty" in result.output
    assert "Nothing was applied" in result.output
    assert "error:" in ready("personas", "show", "bob").output
    skipped = ok(ready("personas", "sync", str(folder), "--skip-invalid"))
    assert "created: bob" in skipped.output


def test_edit_set_history_and_diff(ready: Invoke) -> None:
    result = ok(ready("personas", "edit", "tina-kulkarni", "--set", "voice.speed=1.1",
                      "--set", "tags=[astrology, hindi]", "--note", "faster"))
    assert "version 2" in result.output
    shown = as_json(ready("personas", "show", "tina-kulkarni", "--json"))
    assert shown["definition"]["voice"]["speed"] == 1.1
    assert shown["definition"]["voice"]["voice_id"] == "nova"  # merged, not replaced
    assert shown["definition"]["tags"] == ["astrology", "hindi"]
    history = as_json(ready("personas", "history", "tina-kulkarni", "--json"))
    assert [v["version"] for v in history] == [1, 2] and history[1]["note"] == "faster"
    assert "faster" in ok(ready("personas", "history", "tina-kulkarni")).output
    diff = ok(ready("personas", "diff", "tina-kulkarni")).output
    assert "-  speed: 0.95" in diff and "+  speed: 1.1" in diff
    patch = as_json(ready("personas", "diff", "tina-kulkarni", "1", "2", "--json"))
    assert "voice" in patch["changed_fields"]


def test_edit_without_change_makes_no_version(ready: Invoke) -> None:
    result = ok(ready("personas", "edit", "tina-kulkarni", "--set", "voice.speed=0.95"))
    assert "No changes" in result.output
    assert len(as_json(ready("personas", "history", "tina-kulkarni", "--json"))) == 1


def test_edit_with_file_replaces(ready: Invoke, bob_file: Path, tmp_path: Path) -> None:
    ok(ready("personas", "create", str(bob_file)))
    new = tmp_path / "new.yaml"
    new.write_text("name: Robert\n", encoding="utf-8")
    ok(ready("personas", "edit", "local/bob", "--file", str(new)))
    definition = as_json(ready("personas", "show", "local/bob", "--json"))["definition"]
    assert definition == {"id": "local/bob", "name": "Robert"}


def test_edit_in_editor(ready: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text(encoding='utf-8').replace('speed: 0.95', 'speed: 0.8'),"
        " encoding='utf-8')\n", encoding="utf-8")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    ok(ready("personas", "edit", "tina-kulkarni"))
    shown = as_json(ready("personas", "show", "tina-kulkarni", "--json"))
    assert shown["version"] == 2 and shown["definition"]["voice"]["speed"] == 0.8


def test_edit_without_editor_is_a_clear_error(ready: Invoke) -> None:
    result = ready("personas", "edit", "tina-kulkarni")
    assert result.exit_code == 1
    assert "error: no editor" in result.stderr


def test_edit_rejects_bad_assignment(ready: Invoke) -> None:
    assert ready("personas", "edit", "tina-kulkarni", "--set", "novalue").exit_code == 2


def test_rollback_restores_old_definition(ready: Invoke) -> None:
    ok(ready("personas", "edit", "tina-kulkarni", "--set", "name=Tina K"))
    ok(ready("personas", "rollback", "tina-kulkarni", "1"))
    shown = as_json(ready("personas", "show", "tina-kulkarni", "--json"))
    assert shown["version"] == 3 and shown["definition"]["name"] == "Tina Kulkarni"
    old = as_json(ready("personas", "show", "tina-kulkarni", "--version", "2", "--json"))
    assert old["definition"]["name"] == "Tina K"


def test_archive_hides_and_restore_shows(ready: Invoke) -> None:
    ok(ready("personas", "archive", "mohit"))
    assert "mohit" not in ok(ready("personas", "list")).output
    assert "mohit" in ok(ready("personas", "list", "--all")).output
    ok(ready("personas", "restore", "mohit"))
    assert "mohit" in ok(ready("personas", "list")).output


def test_list_filters_and_json_is_plain(ready: Invoke) -> None:
    listed = as_json(ready("personas", "list", "--language", "Hindi", "--json"))
    assert [p["id"] for p in listed["data"]] == ["tina-kulkarni"]
    tagged = as_json(ready("personas", "list", "--tag", "python", "--owner", "global", "--json"))
    assert [p["id"] for p in tagged["data"]] == ["python-tutor"]
    assert ready("personas", "list", "--language", "not a language").exit_code == 1


def test_show_prompt_and_yaml(ready: Invoke) -> None:
    prompt = ok(ready("personas", "show", "tina-kulkarni", "--prompt")).stdout
    assert prompt.startswith("You are Tina Kulkarni")
    data = yaml.safe_load(ok(ready("personas", "show", "tina-kulkarni", "--yaml")).stdout)
    assert data["id"] == "tina-kulkarni"


def test_export_import_yaml_round_trip(ready: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "tina.yaml"
    ok(ready("personas", "export", "tina-kulkarni", "-o", str(target)))
    ok(ready("personas", "import", str(target), "--id", "tina-copy"))
    original = as_json(ready("personas", "show", "tina-kulkarni", "--json"))["definition"]
    copy = as_json(ready("personas", "show", "local/tina-copy", "--json"))["definition"]
    assert copy == {**original, "id": "local/tina-copy"}


@pytest.mark.parametrize("fmt", ["card", "card-png"])
def test_export_import_card_round_trip(ready: Invoke, tmp_path: Path, fmt: str) -> None:
    ok(ready("personas", "export", "tina-kulkarni", "--format", fmt, "-o", str(tmp_path)))
    card = next(p for p in tmp_path.iterdir() if p.name.startswith("tina-kulkarni."))
    result = ok(ready("personas", "import", str(card), "--id", "tina-card", "--json"))
    assert json.loads(result.stdout)["data"][0]["id"] == "local/tina-card"
    original = as_json(ready("personas", "show", "tina-kulkarni", "--json"))["definition"]
    copy = as_json(ready("personas", "show", "local/tina-card", "--json"))["definition"]
    assert copy["name"] == original["name"]
    assert copy["greetings"] == original["greetings"]


def test_export_to_stdout_and_all(ready: Invoke, tmp_path: Path) -> None:
    data = json.loads(ok(ready("personas", "export", "mohit", "--format", "json")).stdout)
    assert data["id"] == "mohit"
    out = tmp_path / "out"
    ok(ready("personas", "export", "--all", str(out), "--format", "json"))
    assert (out / "tina-kulkarni.json").is_file() and len(list(out.iterdir())) == 7
    assert ready("personas", "export").exit_code == 2


def test_a_users_personas_sync_export_and_sync_back(ready: Invoke, tmp_path: Path) -> None:
    ok(ready("users", "create", "alice"))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "secret.yaml").write_text("name: Secret\n", encoding="utf-8")
    synced = as_json(ready("personas", "sync", str(folder), "--owner", "alice", "--json"))
    assert synced["created"] == ["alice/secret"]
    shown = as_json(ready("personas", "show", "alice/secret", "--json"))
    assert shown["visibility"] == "private" and shown["scope"] != "global"
    single = tmp_path / "single"
    single.mkdir()
    ok(ready("personas", "export", "alice/secret", "-o", str(single)))
    assert [p.name for p in single.iterdir()] == ["alice--secret.yaml"]
    out = tmp_path / "out"
    ok(ready("personas", "export", "--all", str(out)))
    assert yaml.safe_load((out / "alice" / "secret.yaml").read_text())["id"] == "alice/secret"
    again = as_json(ready("personas", "sync", str(out / "alice"), "--owner", "alice", "--json"))
    assert again["unchanged"] == ["alice/secret"] and not again["created"]


def test_sync_for_a_user_refuses_another_namespace(ready: Invoke, tmp_path: Path) -> None:
    ok(ready("users", "create", "alice"))
    ok(ready("users", "create", "bob"))
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "x.yaml").write_text("{id: alice/x, name: X}\n", encoding="utf-8")
    result = ready("personas", "sync", str(folder), "--owner", "bob")
    assert result.exit_code == 1
    assert "only create personas in the owner's namespace 'bob/'" in result.output


def test_user_names_follow_the_namespace_rules(ready: Invoke) -> None:
    result = ready("users", "create", "Alice Smith")
    assert result.exit_code == 1
    assert "user name 'Alice Smith': use lowercase letters" in result.stderr


def test_delete_needs_hard_and_confirmation(ready: Invoke) -> None:
    assert ready("personas", "delete", "mohit").exit_code == 2
    assert ready("personas", "delete", "mohit", "--hard", input="n\n").exit_code == 1
    ok(ready("personas", "delete", "mohit", "--hard", "--yes"))
    assert ready("personas", "show", "mohit").exit_code == 1


def test_users_and_keys(ready: Invoke) -> None:
    ok(ready("users", "create", "alice", "--role", "admin"))
    assert "alice" in ok(ready("users", "list")).output
    created = ok(ready("keys", "create", "alice", "--name", "laptop"))
    token = next(line for line in created.stdout.splitlines() if line.startswith("pk_"))
    assert "cannot be shown again" in created.stderr
    keys = as_json(ready("keys", "list", "alice", "--json"))
    assert [k["name"] for k in keys] == ["laptop"] and token.startswith(keys[0]["prefix"])
    ok(ready("keys", "revoke", keys[0]["id"]))
    assert as_json(ready("keys", "list", "--json"))[0]["revoked"] is True
    duplicate = ready("users", "create", "alice")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr


def test_unknown_persona_is_an_error_without_traceback(ready: Invoke) -> None:
    result = ready("personas", "show", "nobody")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: persona 'nobody' not found")
    assert "Traceback" not in result.output and result.stdout == ""


def test_db_current_and_upgrade(cli: Invoke) -> None:
    before = as_json(cli("db", "current", "--json"))
    assert before["current"] is None and not before["up_to_date"]
    assert "Upgraded" in ok(cli("db", "upgrade")).output
    assert as_json(cli("db", "current", "--json"))["up_to_date"] is True


def test_global_options_override_environment(cli: Invoke, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    ok(cli("--data-dir", str(other), "init", "--no-samples"))
    assert (other / "personae.db").is_file()


def test_serve_prints_banner_and_passes_settings(
    ready: Invoke, monkeypatch: pytest.MonkeyPatch, restore_environ: None,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kw: calls.append(kw))
    result = ok(ready("serve", "--port", "8123"))
    assert "Dashboard: http://127.0.0.1:8123/" in result.output
    assert "API docs:  http://127.0.0.1:8123/docs" in result.output
    assert "Keyless access" in result.output
    assert calls[0]["factory"] is True and calls[0]["port"] == 8123
    assert os.environ["PERSONAE_PORT"] == "8123"
    remote = ok(ready("serve", "--host", "0.0.0.0"))
    assert "API keys required" in remote.output
    assert "no API key exists" in remote.stderr
