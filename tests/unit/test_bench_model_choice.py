"""The model-choice benchmark's rule, and the test suite's pinning of the small model."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_choice(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench/model_choice.py``, imported the way it runs (``bench/`` on the path)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("model_choice", ROOT / "bench" /
                                                  "model_choice.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "model_choice", module)
    spec.loader.exec_module(module)
    return module


def row(module: ModuleType, name: str, passed: int, ttft2: float, tps: float) -> object:
    return module.ModelRow(name, ttft_first_s=1.0, ttft_second_s=ttft2, decode_tps=tps,
                           peak_rss_mb=100.0, personas={"a": [passed, 10]})


def test_the_best_pass_rate_under_the_ttft_limit_wins(model_choice: ModuleType) -> None:
    rows = [row(model_choice, "small", 6, 0.1, 120.0), row(model_choice, "mid", 8, 0.4, 50.0),
            row(model_choice, "big", 9, 1.2, 25.0)]  # the best, but too slow
    assert model_choice.choose_default(rows) == "mid"


def test_a_tie_goes_to_the_faster_decoder(model_choice: ModuleType) -> None:
    rows = [row(model_choice, "slow", 7, 0.3, 40.0), row(model_choice, "fast", 7, 0.5, 90.0)]
    assert model_choice.choose_default(rows) == "fast"


def test_the_limit_is_strict_and_none_when_nothing_is_fast_enough(
        model_choice: ModuleType) -> None:
    rows = [row(model_choice, "edge", 9, 1.0, 40.0), row(model_choice, "slow", 10, 2.0, 9.0)]
    assert model_choice.choose_default(rows) is None
    assert model_choice.choose_default(rows, ttft_limit_s=1.5) == "edge"


def test_the_pass_rate_is_over_counted_cases_of_every_persona(
        model_choice: ModuleType) -> None:
    measured = model_choice.ModelRow("m", 1.0, 0.2, 50.0, 100.0,
                                     personas={"a": [3, 4], "b": [1, 4], "c": [0, 0]})
    assert (measured.passed, measured.counted, measured.pass_rate) == (4, 8, 0.5)
    assert "| m | 3/4 | 1/4 | 0/0 | 4/8 (50%) |" in model_choice.table([measured])


def test_the_test_suite_runs_the_small_model() -> None:
    """scripts/test.sh exports the pin and conftest sets it for a bare ``pytest``, so
    no test loads (or assembles) a big model whatever the served default is."""
    from personae.config import Settings

    assert os.environ["PERSONAE_EMBEDDED_MODEL"] == "smollm2-135m"
    assert Settings().embedded_model == "smollm2-135m"
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "export PERSONAE_EMBEDDED_MODEL=smollm2-135m" in script
