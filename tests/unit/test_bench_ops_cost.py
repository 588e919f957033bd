"""The benchmarks' comparison of rate limits and metrics on against off."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

from personae.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench/_common.py``, imported the way the scripts import it."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("_common")


def test_ops_off_env_turns_limits_and_metrics_off(common: ModuleType,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    for ops in (True, False):
        for name, value in common.personae_env(tmp_path, "sqlite+aiosqlite://", ops=ops).items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert settings.rate_limits_enabled is ops
        assert settings.metrics_enabled is ops
        assert settings.rate_limits["admin"].other == "1000000000/minute"


def test_rate_limits_cover_every_role_and_class(common: ModuleType) -> None:
    budgets = json.loads(common.BENCH_RATE_LIMITS)
    assert set(budgets) == {"member", "admin", "anonymous"}
    assert all(set(classes) == {"chat", "audio", "jobs", "writes", "other"}
               for classes in budgets.values())


def test_rounds_rotate_through_every_order(common: ModuleType) -> None:
    names = ["a", "b", "c"]
    assert [common.rotated(names, i) for i in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


@pytest.mark.parametrize(("on_ms", "passed"), [(1.19, True), (1.21, False)])
def test_ops_cost_checks_the_added_median(common: ModuleType, capsys: pytest.CaptureFixture[str],
                                          on_ms: float, passed: bool) -> None:
    report = common.Report()
    added = common.report_ops_cost(report, [on_ms, on_ms, 9.0], [1.0, 1.0, 0.5], 150.0, 120.0)
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert added == pytest.approx(on_ms - 1.0)
    assert printed["ops_added_cpu_us_per_req"] == "30.0"
    assert printed["ops_cpu_ratio_on_vs_off"] == "1.250"
    assert [(name, ok) for name, ok, _ in report.checks] == [("ops_added_median_ms", passed)]
