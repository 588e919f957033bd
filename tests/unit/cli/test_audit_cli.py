"""``personae users role/disable/enable``, ``personae keys limits`` and ``personae audit``
against a real SQLite database in a temporary folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app

Invoke = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    assert invoke("init", "--no-samples").exit_code == 0
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def _key_id(cli: Invoke, user: str) -> str:
    key_id: str = as_json(cli("keys", "create", user, "--json"))["id"]
    return key_id


def test_roles_and_the_last_admin(cli: Invoke) -> None:
    ok(cli("users", "create", "root", "--role", "admin"))
    ok(cli("users", "create", "alice"))
    assert "now admin" in ok(cli("users", "role", "alice", "admin")).output
    ok(cli("users", "role", "root", "member"))
    refused = cli("users", "role", "alice", "member")
    assert refused.exit_code == 1 and "last admin" in refused.output
    assert cli("users", "disable", "alice").exit_code == 1
    assert cli("users", "role", "nobody", "admin").exit_code == 1
    assert cli("users", "role", "alice", "boss").exit_code == 2


def test_disable_and_enable(cli: Invoke) -> None:
    ok(cli("users", "create", "alice"))
    assert "Disabled 'alice'" in ok(cli("users", "disable", "alice")).output
    users = as_json(cli("users", "list", "--json"))
    assert [u["disabled"] for u in users if u["name"] == "alice"] == [True]
    ok(cli("users", "enable", "alice"))
    users = as_json(cli("users", "list", "--json"))
    assert [u["disabled"] for u in users if u["name"] == "alice"] == [False]


def test_key_limits(cli: Invoke) -> None:
    ok(cli("users", "create", "alice"))
    key_id = _key_id(cli, "alice")
    assert "follows its role" in ok(cli("keys", "limits", key_id)).output
    shown = ok(cli("keys", "limits", key_id, "--chat", "120/minute",
                   "--tokens-per-day", "50000"))
    assert "120/minute" in shown.output and "tokens_per_day" in shown.output
    assert as_json(cli("keys", "limits", key_id, "--json"))["limits"] == {
        "chat": "120/minute", "tokens_per_day": "50000"}
    bad = cli("keys", "limits", key_id, "--jobs", "often")
    assert bad.exit_code == 1 and "jobs" in bad.output
    assert cli("keys", "limits", key_id, "--clear", "--chat", "1/second").exit_code == 2
    ok(cli("keys", "limits", key_id, "--clear"))
    assert as_json(cli("keys", "limits", key_id, "--json"))["limits"] is None
    assert cli("keys", "limits", "nope", "--clear").exit_code == 1


def test_audit_lists_what_the_cli_did(cli: Invoke, tmp_path: Path) -> None:
    ok(cli("users", "create", "alice"))
    key_id = _key_id(cli, "alice")
    ok(cli("keys", "limits", key_id, "--chat", "5/minute"))
    ok(cli("keys", "revoke", key_id))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "tutor.yaml").write_text("name: Tutor\n", encoding="utf-8")
    ok(cli("personas", "sync", str(folder), "--owner", "alice"))
    entries = as_json(cli("audit", "--json"))
    assert [e["action"] for e in entries] == ["persona.sync", "key.revoke", "key.limits",
                                              "key.create", "user.create"]
    assert {e["client"] for e in entries} == {"cli"}
    assert entries[0]["summary"]["created"] == 1
    table = ok(cli("audit")).output
    assert "key.revoke" in table and f"key:{key_id}" in table and "cli" in table
    assert [e["action"] for e in as_json(cli("audit", "--action", "key.", "--json"))] == [
        "key.revoke", "key.limits", "key.create"]
    assert len(as_json(cli("audit", "--target", f"key:{key_id}", "--json"))) == 3
    assert len(as_json(cli("audit", "--since", "1h", "--limit", "2", "--json"))) == 2
    assert as_json(cli("audit", "--since", "2999-01-01", "--json")) == []
    assert as_json(cli("audit", "--actor", "local", "--json"))[0]["action"] == "persona.sync"
    assert "No audit entries" in ok(cli("audit", "--actor", "nobody")).output
    for bad in (("--since", "soon"), ("--limit", "0"), ("--action", "x.")):
        assert cli("audit", *bad).exit_code == 1, bad
