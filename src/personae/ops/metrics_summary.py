"""Headline figures read off the process's Prometheus registry: what an admin wants at a
glance (requests, turns, errors, rate-limit refusals, figures per persona) without a
Prometheus server to query.

The figures are the same counters ``GET /metrics`` exposes, summed over their labels;
they count since the process started (or, with several workers, since ``personae
serve`` started them), as the counters themselves do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from personae.ops.metrics import PREFIX, Metrics

TURN_STATUSES = ("complete", "interrupted", "failed")
MAX_PERSONAS = 100  # the busiest ones; a summary is not a full export


@dataclass(slots=True)
class PersonaFigures:
    """One persona's turns, errors, tokens and mean time to first token."""

    persona: str
    turns: int = 0
    complete: int = 0
    interrupted: int = 0
    failed: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_mean_ms: float | None = None


@dataclass(slots=True)
class MetricsSummary:
    requests: int = 0
    requests_by_status: dict[str, int] = field(default_factory=dict)  # "2xx": n, ...
    turns: dict[str, int] = field(default_factory=dict)  # complete, interrupted, failed
    turn_errors: int = 0
    tokens: dict[str, int] = field(default_factory=dict)  # prompt, completion
    rate_limited: dict[str, int] = field(default_factory=dict)  # per route class
    rate_limited_total: int = 0
    jobs_failed: dict[str, int] = field(default_factory=dict)
    active_sessions: int = 0
    open_sockets: dict[str, int] = field(default_factory=dict)
    personas: list[PersonaFigures] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Samples = list[tuple[dict[str, str], float]]


def registry_of(metrics: Metrics) -> CollectorRegistry:
    """The registry ``/metrics`` renders: this process's, or every worker's files."""
    if metrics.multiprocess_dir is None:
        return metrics.registry
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=metrics.multiprocess_dir)  # type: ignore[no-untyped-call]
    return registry


def _samples(registry: CollectorRegistry) -> dict[str, Samples]:
    """Sample name (prefix dropped) -> its (labels, value) pairs."""
    found: dict[str, Samples] = defaultdict(list)
    for family in registry.collect():
        for sample in family.samples:
            found[sample.name.removeprefix(PREFIX)].append((sample.labels, sample.value))
    return found


def _by(samples: Iterable[tuple[Mapping[str, str], float]], label: str) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for labels, value in samples:
        totals[labels.get(label, "")] += round(value)
    return dict(sorted(totals.items()))


def _status_class(status: str) -> str:
    return f"{status[:1]}xx" if status[:1].isdigit() else status


def summarize(metrics: Metrics) -> MetricsSummary:
    """The summary of what ``metrics`` has counted (all zeros when it is disabled)."""
    if not metrics.enabled:
        return MetricsSummary()
    found = _samples(registry_of(metrics))
    requests = [({"status": _status_class(labels.get("status", ""))}, value)
                for labels, value in found["http_requests_total"]]
    rate_limited = _by(found["rate_limited_total"], "route_class")
    return MetricsSummary(
        requests=sum(round(v) for _, v in requests),
        requests_by_status=_by(requests, "status"),
        turns={status: _by(found["turns_total"], "status").get(status, 0)
               for status in TURN_STATUSES},
        turn_errors=sum(round(v) for _, v in found["turn_errors_total"]),
        tokens={kind: _by(found["tokens_total"], "kind").get(kind, 0)
                for kind in ("prompt", "completion")},
        rate_limited=rate_limited, rate_limited_total=sum(rate_limited.values()),
        jobs_failed=_by(found["jobs_failed_total"], "kind"),
        active_sessions=sum(round(v) for _, v in found["active_sessions"]),
        open_sockets=_by(found["open_sockets"], "kind"),
        personas=_personas(found))


def _personas(found: Mapping[str, Samples]) -> list[PersonaFigures]:
    """Per persona, summed over providers; the busiest first."""
    figures: dict[str, PersonaFigures] = {}

    def of(labels: Mapping[str, str]) -> PersonaFigures:
        name = labels.get("persona", "")
        return figures.setdefault(name, PersonaFigures(name))

    for labels, value in found.get("turns_total", ()):
        persona, status = of(labels), labels.get("status", "")
        persona.turns += round(value)
        if status in TURN_STATUSES:
            setattr(persona, status, getattr(persona, status) + round(value))
    for labels, value in found.get("turn_errors_total", ()):
        of(labels).errors += round(value)
    for labels, value in found.get("tokens_total", ()):
        kind = labels.get("kind")
        if kind in ("prompt", "completion"):
            persona = of(labels)
            setattr(persona, f"{kind}_tokens", getattr(persona, f"{kind}_tokens") + round(value))
    _first_token_means(found, of)
    ranked = sorted(figures.values(), key=lambda p: (-p.turns, p.persona))
    return ranked[:MAX_PERSONAS]


def _first_token_means(found: Mapping[str, Samples], of: Any) -> None:
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    for labels, value in found.get("turn_first_token_seconds_sum", ()):
        sums[labels.get("persona", "")] += value
    for labels, value in found.get("turn_first_token_seconds_count", ()):
        counts[labels.get("persona", "")] += value
    for name, count in counts.items():
        if count > 0:
            of({"persona": name}).first_token_mean_ms = round(sums[name] / count * 1000, 1)
