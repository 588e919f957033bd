"""Wilson score intervals against published values."""

from __future__ import annotations

import pytest

from personae.quality.stats import wilson_interval


@pytest.mark.parametrize(("passed", "total", "low", "high"), [
    (8, 10, 0.490, 0.943),
    (10, 10, 0.722, 1.0),
    (0, 10, 0.0, 0.278),
    (1, 2, 0.095, 0.905),
    (50, 100, 0.404, 0.596),
])
def test_known_values(passed: int, total: int, low: float, high: float) -> None:
    found = wilson_interval(passed, total)
    assert found == pytest.approx((low, high), abs=5e-4)


def test_nothing_counted_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_more_passes_than_trials_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and total"):
        wilson_interval(3, 2)
