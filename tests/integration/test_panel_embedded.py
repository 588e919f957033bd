"""``personae panel run`` on the sample transcript with the bundled model, offline.

Skipped when llama.cpp or the bundled model is missing, unless
``PERSONAE_REQUIRE_MODEL=1`` (set by ``scripts/test.sh``), which makes it a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app
from personae.errors import ProviderUnavailable
from personae.providers.llama_cpp import bundled_model_path, import_llama_cpp

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "podcast-episode.srt"
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_PROVIDERS",
           "PERSONAE_DEFAULT_PROVIDER", "PERSONAE_EMBEDDED_MODEL_PATH", "PERSONAE_QUEUE",
           "PERSONAE_REDIS_URL")


@pytest.fixture
def bundled_model() -> None:
    try:
        import_llama_cpp()
        bundled_model_path()
    except ProviderUnavailable as exc:
        if os.environ.get("PERSONAE_REQUIRE_MODEL") == "1":
            pytest.fail(f"{exc.message}, but PERSONAE_REQUIRE_MODEL=1", pytrace=False)
        pytest.skip(f"embedded model not available: {exc.message}")


@pytest.mark.usefixtures("bundled_model")
def test_panel_run_scores_the_sample_transcript_offline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["panel", "run", str(SAMPLE), "--personas",
                                 "genz-listener,advertiser", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["status"] == "completed"
    segments = found["segments"]
    assert [s["start_ms"] for s in segments] == [0, 7500, 18000, 27250]
    for segment in segments:
        assert segment["classification"]["status"] == "done"
        assert [c["persona_id"] for c in segment["cards"]] == ["genz-listener", "advertiser"]
        for card in segment["cards"]:
            # Grammar-constrained output: a valid score, or a failure with its reason.
            assert card["status"] in ("done", "failed")
            if card["status"] == "done":
                assert 1 <= card["score"] <= 5 and card["opinion"]
            else:
                assert card["score"] is None and card["error"]
    assert sum(c["status"] == "done" for s in segments for c in s["cards"]) >= 6
