"""A persona's own figures per version and UTC day: turns, tokens, latency, errors,
interruptions and ratings.

Latency percentiles need distributions, and ``persona_metrics`` keeps sums: so each
turn also counts its time to first token and response time in one of a fixed set of
buckets (``time_to_first_token_ms_le_500``, ..., ``_le_inf``), and p50/p95 are read
off the summed buckets by linear interpolation within the bucket that holds the rank,
clamped to the stored minimum and maximum (so one observation reads back exactly).
Turns recorded before the buckets existed count in the means but not the percentiles.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from personae.conversations.metrics_store import MetricCell, MetricsStore
from personae.conversations.rating_store import RatingCount, RatingStore
from personae.errors import InvalidInput, PermissionDenied
from personae.personas.service import PersonaService, can_write

if TYPE_CHECKING:
    from personae.auth.principal import Principal

# Upper bounds (ms) of the latency buckets, 25 ms to 2 minutes; slower goes to "inf".
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000,
    15_000, 20_000, 30_000, 60_000, 120_000)
HISTOGRAMS = ("time_to_first_token_ms", "response_ms")
OVERFLOW = "inf"
MAX_DAYS = 366


def bucket_metric(metric: str, value: float) -> str:
    """The bucket a latency falls in, as a metric name (``response_ms_le_750``)."""
    index = bisect.bisect_left(LATENCY_BOUNDS_MS, value)
    bound = str(LATENCY_BOUNDS_MS[index]) if index < len(LATENCY_BOUNDS_MS) else OVERFLOW
    return f"{metric}_le_{bound}"


def histogram_marks(values: Mapping[str, float]) -> dict[str, float]:
    """One count in its bucket for each latency among a turn's metrics."""
    return {bucket_metric(name, values[name]): 1.0 for name in HISTOGRAMS if name in values}


def bucket_names(metric: str) -> list[str]:
    """Every bucket of a histogram, lowest first (the overflow last)."""
    return [f"{metric}_le_{bound}" for bound in (*LATENCY_BOUNDS_MS, OVERFLOW)]


def percentile(counts: Sequence[int], q: float, minimum: float, maximum: float,
               bounds: Sequence[float] = LATENCY_BOUNDS_MS) -> float | None:
    """The ``q`` quantile (0..1) of observations counted per bucket: ``counts[i]`` in
    ``(bounds[i-1], bounds[i]]``, the last count above the last bound. None when empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(counts):
        if count > 0 and seen + count >= rank:
            lower = max(float(bounds[index - 1]) if index else 0.0, minimum)
            upper = min(float(bounds[index]) if index < len(bounds) else maximum, maximum)
            value = lower + (upper - lower) * (rank - seen) / count
            return min(max(value, minimum), maximum)
        seen += count
    return maximum


@dataclass(slots=True)
class Summed:
    """One metric summed over a span: how often observed, total, smallest, largest."""

    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None

    def add(self, cell: MetricCell) -> None:
        self.count += cell.count
        self.total += cell.total
        if cell.minimum is not None:
            self.minimum = cell.minimum if self.minimum is None else min(self.minimum,
                                                                         cell.minimum)
        if cell.maximum is not None:
            self.maximum = cell.maximum if self.maximum is None else max(self.maximum,
                                                                         cell.maximum)


def latency(summed: Mapping[str, Summed], metric: str) -> dict[str, float | None]:
    """Mean, p50 and p95 of a latency metric (None where nothing was observed)."""
    observed = summed.get(metric)
    if observed is None or observed.count == 0:
        return {"mean": None, "p50": None, "p95": None}
    low = observed.minimum if observed.minimum is not None else 0.0
    high = observed.maximum if observed.maximum is not None else low
    counts = [int(summed[name].total) if name in summed else 0 for name in bucket_names(metric)]
    return {"mean": _round(observed.total / observed.count),
            "p50": _round(percentile(counts, 0.50, low, high)),
            "p95": _round(percentile(counts, 0.95, low, high))}


def figures(summed: Mapping[str, Summed], up: int = 0, down: int = 0) -> dict[str, Any]:
    """What the API shows for one span (a day, or a version's whole window)."""
    def total(metric: str) -> int:
        return int(summed[metric].total) if metric in summed else 0

    return {"turns": total("turns"), "prompt_tokens": total("prompt_tokens"),
            "completion_tokens": total("completion_tokens"),
            "time_to_first_token_ms": latency(summed, "time_to_first_token_ms"),
            "response_ms": latency(summed, "response_ms"),
            "errors": total("errors"), "interruptions": total("interrupted"),
            "ratings": {"up": up, "down": down}}


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@dataclass(slots=True)
class _Span:
    summed: dict[str, Summed] = field(default_factory=dict)
    up: int = 0
    down: int = 0

    def add(self, cell: MetricCell) -> None:
        self.summed.setdefault(cell.metric, Summed()).add(cell)

    def rate(self, count: RatingCount) -> None:
        self.up, self.down = self.up + count.up, self.down + count.down

    def public(self) -> dict[str, Any]:
        return figures(self.summed, self.up, self.down)


def summarise(cells: Iterable[MetricCell], ratings: Iterable[RatingCount]
              ) -> list[dict[str, Any]]:
    """Per version (ascending): its days (ascending) and its totals over all of them."""
    days: dict[int, dict[date, _Span]] = {}
    totals: dict[int, _Span] = {}
    for cell in cells:
        days.setdefault(cell.version, {}).setdefault(cell.day, _Span()).add(cell)
        totals.setdefault(cell.version, _Span()).add(cell)
    for count in ratings:
        days.setdefault(count.version, {}).setdefault(count.day, _Span()).rate(count)
        totals.setdefault(count.version, _Span()).rate(count)
    return [{"version": version,
             "days": [{"day": day.isoformat(), **span.public()}
                      for day, span in sorted(days[version].items())],
             "totals": totals[version].public()} for version in sorted(totals)]


def window_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC ``days - 1`` days ago: ``days=1`` is today so far."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)


class PersonaMetrics:
    """Reads a persona's figures for its owner and admins (a member who can read the
    persona is refused; one who cannot is told it does not exist)."""

    def __init__(self, personas: PersonaService, store: MetricsStore,
                 ratings: RatingStore) -> None:
        self.personas = personas
        self.store = store
        self.ratings = ratings

    async def report(self, principal: Principal, persona_id: str, days: int = 30,
                     version: int | None = None) -> dict[str, Any]:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", {"days": days})
        await self._owned(principal, persona_id, version)
        since = window_start(days)
        cells = await self.store.daily(persona_id, since, version)
        counts = await self.ratings.daily_counts(persona_id, since, version)
        return {"persona_id": persona_id, "days": days, "since": since.date().isoformat(),
                "versions": summarise(cells, counts)}

    async def _owned(self, principal: Principal, persona_id: str,
                     version: int | None) -> None:
        record = (await self.personas.get(principal, persona_id)).record
        if not can_write(principal, record):
            who = "admins" if record.is_global else "its owner and admins"
            raise PermissionDenied(f"the metrics of persona '{persona_id}' are for {who}")
        if version is not None:
            await self.personas.version(principal, persona_id, version)
