"""Latency buckets and the percentiles read off them; summaries per version and day."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from personae.conversations.metrics import (
    LATENCY_BOUNDS_MS,
    bucket_metric,
    bucket_names,
    histogram_marks,
    percentile,
    summarise,
    window_start,
)
from personae.conversations.metrics_store import MetricCell
from personae.conversations.rating_store import RatingCount


def _counts(values: list[float]) -> list[int]:
    names = bucket_names("response_ms")
    marked = [bucket_metric("response_ms", value) for value in values]
    return [marked.count(name) for name in names]


def test_each_latency_lands_in_the_bucket_whose_bound_holds_it() -> None:
    assert bucket_metric("response_ms", 0) == "response_ms_le_25"
    assert bucket_metric("response_ms", 25) == "response_ms_le_25"
    assert bucket_metric("response_ms", 25.1) == "response_ms_le_50"
    assert bucket_metric("time_to_first_token_ms", 120_000) == \
        "time_to_first_token_ms_le_120000"
    assert bucket_metric("response_ms", 120_000.5) == "response_ms_le_inf"
    assert LATENCY_BOUNDS_MS[0] == 25 and LATENCY_BOUNDS_MS[-1] == 120_000
    assert histogram_marks({"turns": 1.0, "response_ms": 640.0,
                            "time_to_first_token_ms": 90.0}) == {
        "response_ms_le_750": 1.0, "time_to_first_token_ms_le_100": 1.0}


def test_percentiles_of_a_known_distribution() -> None:
    values = [float(v) for v in range(1, 2001)]  # uniform 1..2000 ms
    counts = _counts(values)
    p50 = percentile(counts, 0.50, 1.0, 2000.0)
    p95 = percentile(counts, 0.95, 1.0, 2000.0)
    assert p50 == pytest.approx(1000.0, abs=1.0)
    assert p95 == pytest.approx(1900.0, abs=1.0)


def test_percentiles_of_a_skewed_sample_stay_near_the_truth() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(6.5, 0.6) for _ in range(5000))  # ~665 ms median
    counts = _counts(values)
    for q in (0.5, 0.95):
        exact = values[int(q * len(values)) - 1]
        estimate = percentile(counts, q, values[0], values[-1])
        assert estimate is not None
        assert abs(estimate - exact) / exact < 0.1  # within the bucket's resolution


def test_one_bucket_is_clamped_to_the_observed_range() -> None:
    counts = _counts([120.0, 150.0, 180.0])  # all in (100, 200]
    assert percentile(counts, 0.5, 120.0, 180.0) == pytest.approx(150.0)
    assert percentile(counts, 0.95, 120.0, 180.0) == pytest.approx(177.0)
    single = _counts([640.0])
    assert percentile(single, 0.5, 640.0, 640.0) == 640.0
    assert percentile(single, 0.95, 640.0, 640.0) == 640.0


def test_the_overflow_bucket_reaches_the_maximum() -> None:
    counts = _counts([100.0, 200_000.0])
    assert percentile(counts, 0.95, 100.0, 200_000.0) == pytest.approx(
        120_000 + 80_000 * 0.9)
    assert percentile(counts, 1.0, 100.0, 200_000.0) == 200_000.0


def test_empty_counts_have_no_percentile() -> None:
    assert percentile([], 0.5, 0.0, 0.0) is None
    assert percentile([0] * 20, 0.95, 0.0, 0.0) is None


def _cell(version: int, day: date, metric: str, count: int, total: float,
          low: float | None = None, high: float | None = None) -> MetricCell:
    return MetricCell(version, day, metric, count, total, low, high)


def test_summaries_per_version_and_day_with_totals() -> None:
    first, second = date(2025, 3, 1), date(2025, 3, 2)
    cells = [
        _cell(1, first, "turns", 2, 2.0, 1.0, 1.0),
        _cell(1, first, "response_ms", 2, 300.0, 100.0, 200.0),
        _cell(1, first, "response_ms_le_100", 1, 1.0),
        _cell(1, first, "response_ms_le_200", 1, 1.0),
        _cell(1, second, "turns", 1, 1.0, 1.0, 1.0),
        _cell(1, second, "errors", 1, 1.0, 1.0, 1.0),
        _cell(1, second, "response_ms", 1, 900.0, 900.0, 900.0),
        _cell(1, second, "response_ms_le_1000", 1, 1.0),
        _cell(2, second, "turns", 1, 1.0, 1.0, 1.0),
        _cell(2, second, "interrupted", 1, 1.0, 1.0, 1.0),
        _cell(2, second, "prompt_tokens", 1, 40.0, 40.0, 40.0)]
    ratings = [RatingCount(1, second, 2, 1), RatingCount(3, first, 0, 1)]
    versions = summarise(cells, ratings)
    assert [v["version"] for v in versions] == [1, 2, 3]
    one = versions[0]
    assert [d["day"] for d in one["days"]] == ["2025-03-01", "2025-03-02"]
    assert one["days"][0]["response_ms"] == {"mean": 150.0, "p50": 100.0, "p95": 190.0}
    assert one["totals"]["turns"] == 3 and one["totals"]["errors"] == 1
    assert one["totals"]["response_ms"]["mean"] == 400.0
    # rank 2.85 of 3: 0.85 of the way through (750, 1000] clamped to the maximum, 900
    assert one["totals"]["response_ms"]["p95"] == pytest.approx(750 + 150 * 0.85)
    assert one["totals"]["ratings"] == {"up": 2, "down": 1}
    assert one["days"][0]["ratings"] == {"up": 0, "down": 0}
    assert one["totals"]["time_to_first_token_ms"] == {"mean": None, "p50": None, "p95": None}
    two = versions[1]["totals"]
    assert (two["interruptions"], two["prompt_tokens"], two["errors"]) == (1, 40, 0)
    assert versions[2]["totals"]["turns"] == 0 and versions[2]["totals"]["ratings"]["down"] == 1


def test_the_window_starts_at_utc_midnight() -> None:
    now = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
    assert window_start(1, now) == datetime(2025, 3, 10, tzinfo=UTC)
    assert window_start(30, now) == datetime(2025, 2, 9, tzinfo=UTC)
