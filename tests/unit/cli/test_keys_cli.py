"""``personae keys create``: a key created without ``--name`` gets a label no other key
of that user has, so ``personae keys list`` tells them apart by name too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from personae.cli.main import app


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``personae ARGS... --json`` as parsed JSON, on a fresh data folder with alice and bob."""
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PERSONAE_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, as_json: bool = True) -> Any:
        result = runner.invoke(app, [*args, "--json"] if as_json else list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if as_json else result.output

    assert runner.invoke(app, ["init", "--no-samples"]).exit_code == 0
    for name in ("alice", "bob"):
        run("users", "create", name)
    return run


def names(keys: Any, user: str) -> list[str]:
    return sorted(k["name"] for k in keys("keys", "list", user))


def test_a_second_unnamed_key_is_labelled_apart(keys: Any) -> None:
    first = keys("keys", "create", "alice")
    second = keys("keys", "create", "alice")
    third = keys("keys", "create", "alice")
    assert (first["name"], second["name"], third["name"]) == ("default", "default-2", "default-3")
    assert names(keys, "alice") == ["default", "default-2", "default-3"]


def test_labels_are_counted_per_user_and_revoked_keys_keep_theirs(keys: Any) -> None:
    first = keys("keys", "create", "alice")
    assert keys("keys", "create", "bob")["name"] == "default"
    keys("keys", "revoke", first["id"], as_json=False)
    assert keys("keys", "create", "alice")["name"] == "default-2"


def test_a_chosen_name_is_kept_as_given(keys: Any) -> None:
    keys("keys", "create", "alice", "--name", "laptop")
    assert keys("keys", "create", "alice", "--name", "laptop")["name"] == "laptop"
    assert keys("keys", "create", "alice", "--name", "default")["name"] == "default"
    assert names(keys, "alice") == ["default", "laptop", "laptop"]
