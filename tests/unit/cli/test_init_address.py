"""``personae init`` names the address ``personae serve`` will listen on (scripts/run.sh
exports the --host/--port it was given, so its "Next steps" match)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app


def test_init_shows_the_configured_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONAE_PORT", "8814")
    result = CliRunner().invoke(app, ["init", "--no-samples"])
    assert result.exit_code == 0, result.output
    assert "start the dashboard and API on http://127.0.0.1:8814" in result.stdout
    assert ":8000" not in result.stdout


def test_init_says_the_api_alone_without_the_dashboard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONAE_DASHBOARD_ENABLED", "false")
    monkeypatch.setenv("PERSONAE_HOST", "::1")
    result = CliRunner().invoke(app, ["init", "--no-samples"])
    assert result.exit_code == 0, result.output
    assert "start the API on http://[::1]:8000" in result.stdout
    assert "dashboard" not in result.stdout
