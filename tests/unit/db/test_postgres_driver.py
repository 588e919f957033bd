"""A PostgreSQL URL without its driver installed is one line naming the extra to
install, from the engine and through the command line, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app
from personae.db.engine import make_engine
from personae.errors import DatabaseUnavailable

URL = "postgresql+asyncpg://someone:secret@127.0.0.1:1/personae"


@pytest.fixture
def no_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # "import asyncpg" now fails


@pytest.mark.usefixtures("no_asyncpg")
def test_the_engine_names_the_extra_and_hides_the_password() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"pip install 'personae\[postgres\]'") as raised:
        make_engine(URL)
    assert "secret" not in raised.value.message


@pytest.mark.usefixtures("no_asyncpg")
def test_init_reports_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSONAE_CONFIG", raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PERSONAE_DATABASE_URL", "postgresql://someone:secret@127.0.0.1:1/p")
    result = CliRunner().invoke(app, ["init", "--no-samples"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "pip install 'personae[postgres]'" in lines[0] and "Traceback" not in result.output
