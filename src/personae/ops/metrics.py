"""Prometheus metrics: what the API, turns, providers, jobs and voice are doing.

Every :class:`Metrics` keeps its own registry, so several runtimes in one process (as
in tests) never share or clash over counts. With several worker processes
(``personae serve --workers N``) each process writes its values to files under
``PROMETHEUS_MULTIPROC_DIR`` (``prometheus-client``'s multiprocess mode, chosen when
the variable is set before the library is imported; see :func:`prepare_multiprocess`)
and a scrape of any worker renders all of them.

``observe_request`` runs on every request, so the labelled children are looked up once
per (method, route, status) and kept: a call is a dict lookup, one counter increment
and one histogram observation. Every method is a no-op when metrics are disabled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

if TYPE_CHECKING:
    from personae.conversations.observe import TurnReport
    from personae.providers.resilience import BreakerListener, BreakerState

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "personae_"
BREAKER_STATES: dict[str, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JOB_KINDS = ("panel", "test")
JOB_STATES = ("queued", "running")
SOCKET_KINDS = ("session", "voice")
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
STAGE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MAX_REQUEST_CHILDREN = 4096  # (method, route, status) triples kept; more are not cached
REFRESH_SECONDS = 1.0  # database gauges are read at most this often
REFRESH_TIMEOUT_SECONDS = 2.0
UNKNOWN = "unknown"
# Each counter would otherwise carry a ``_created`` series too, doubling every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class DatabaseCounts:
    """The gauges read from the database: open sessions, and jobs per (kind, state)."""

    active_sessions: int
    jobs: Mapping[tuple[str, str], int]


CountsSource = Callable[[], Awaitable[DatabaseCounts]]


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(directory: Path) -> Path:
    """Empty ``directory`` and export it as ``PROMETHEUS_MULTIPROC_DIR``, so the worker
    processes started next all write there (values of an earlier run must not count)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


class _Families:
    """The metric families of contract 5, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, text, labels, registry=registry)

        def gauge(name: str, text: str, labels: tuple[str, ...], mode: Any) -> Gauge:
            return Gauge(PREFIX + name, text, labels, registry=registry, multiprocess_mode=mode)

        def histogram(name: str, text: str, labels: tuple[str, ...],
                      buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS) -> Histogram:
            return Histogram(PREFIX + name, text, labels, registry=registry, buckets=buckets)

        self.requests = counter("http_requests", "HTTP requests answered.",
                                ("method", "route", "status"))
        self.duration = histogram("http_request_duration_seconds",
                                  "Time to answer an HTTP request (to the end of its body).",
                                  ("method", "route"))
        self.turns = counter("turns", "Conversation turns finished.",
                             ("persona", "provider", "status"))
        self.first_token = histogram("turn_first_token_seconds",
                                     "Time from a turn's start to its first reply token.",
                                     ("persona", "provider"), TURN_BUCKETS)
        self.tokens = counter("tokens", "Model tokens of finished turns.",
                              ("persona", "provider", "kind"))
        self.turn_errors = counter("turn_errors", "Turns that ended with an error.",
                                   ("persona", "provider", "code"))
        self.breaker = gauge("provider_breaker_state",
                             "Circuit breaker per provider: 0 closed, 1 half open, 2 open.",
                             ("provider",), "max")
        self.retries = counter("provider_retries", "Provider calls tried again.",
                               ("provider",))
        self.jobs = gauge("jobs", "Panel and test jobs waiting or running.",
                          ("kind", "state"), "mostrecent")
        self.jobs_failed = counter("jobs_failed", "Panel and test jobs that failed.",
                                   ("kind",))
        self.voice_stage = histogram("voice_stage_seconds", "Latency of each voice stage.",
                                     ("stage",), STAGE_BUCKETS)
        self.active_sessions = gauge("active_sessions", "Open conversation sessions.", (),
                                     "mostrecent")
        self.open_sockets = gauge("open_sockets", "WebSocket connections open now.",
                                  ("kind",), "livesum")
        self.rate_limited = counter("rate_limited", "Requests refused by a rate limit.",
                                    ("route_class", "scope"))
        self.cache_lookups = counter("cache_lookups", "Cache lookups by result.",
                                     ("cache", "result"))


class _BreakerGauge:
    """A provider breaker's listener: its state gauge and retry counter."""

    def __init__(self, state: Any, retries: Any) -> None:
        self._state = state
        self._retries = retries
        state.set(0.0)

    def state_changed(self, state: BreakerState) -> None:
        self._state.set(BREAKER_STATES.get(state, 0.0))

    def retried(self) -> None:
        self._retries.inc()


class _Ignored:
    def state_changed(self, state: BreakerState) -> None:
        return None

    def retried(self) -> None:
        return None


class Metrics:
    """The process's metrics; built once per runtime."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.multiprocess_dir = multiprocess_dir()
        # In multiprocess mode values go to the shared files; rendering collects those.
        self.registry = CollectorRegistry(auto_describe=False)
        self._families = _Families(None if self.multiprocess_dir else self.registry)
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        self._refreshed_at = -REFRESH_SECONDS
        self._refreshing: asyncio.Lock | None = None

    # -- requests (the hot path) -------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        pair = self._requests.get((method, route, status))
        if pair is None:
            pair = self._request_children(method, route, status)
        pair[0].inc()
        pair[1].observe(seconds)

    def _request_children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        shown = method if method in KNOWN_METHODS else "other"
        pair = (self._families.requests.labels(shown, route, str(status)),
                self._families.duration.labels(shown, route))
        if len(self._requests) < MAX_REQUEST_CHILDREN:
            self._requests[(method, route, status)] = pair
        return pair

    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    # -- turns, providers, jobs, voice -------------------------------------------

    def turn_finished(self, report: TurnReport) -> None:
        """A :class:`~personae.conversations.observe.TurnObserver`: one finished turn."""
        if not self.enabled:
            return
        f, persona, provider = self._families, report.persona_id, report.provider or UNKNOWN
        self._child(f.turns, persona, provider, report.status).inc()
        if report.time_to_first_token_ms is not None:
            self._child(f.first_token, persona, provider).observe(
                report.time_to_first_token_ms / 1000)
        if report.prompt_tokens:
            self._child(f.tokens, persona, provider, "prompt").inc(report.prompt_tokens)
        if report.completion_tokens:
            self._child(f.tokens, persona, provider, "completion").inc(
                report.completion_tokens)
        if report.error_code:
            self._child(f.turn_errors, persona, provider, report.error_code).inc()

    def breaker_listener(self, provider: str) -> BreakerListener:
        """The listener to set on ``provider``'s circuit breaker."""
        if not self.enabled:
            return _Ignored()
        return _BreakerGauge(self._families.breaker.labels(provider),
                             self._families.retries.labels(provider))

    def job_failed(self, kind: str) -> None:
        if self.enabled:
            self._child(self._families.jobs_failed, kind).inc()

    def voice_stage(self, stage: str, seconds: float) -> None:
        if self.enabled:
            self._child(self._families.voice_stage, stage).observe(seconds)

    def socket_opened(self, kind: str) -> None:
        if self.enabled:
            self._child(self._families.open_sockets, kind).inc()

    def socket_closed(self, kind: str) -> None:
        if self.enabled:
            self._child(self._families.open_sockets, kind).dec()

    def rate_limited(self, route_class: str, scope: str) -> None:
        if self.enabled:
            self._child(self._families.rate_limited, route_class, scope).inc()

    def cache_lookup(self, cache: str, hit: bool) -> None:
        if self.enabled:
            self._child(self._families.cache_lookups, cache, "hit" if hit else "miss").inc()

    def cache_counter(self, cache: str) -> Callable[[bool], None]:
        """``cache_lookup`` bound to one cache, for the cache to call on each lookup."""
        return lambda hit: self.cache_lookup(cache, hit)

    # -- database gauges and rendering ------------------------------------------

    async def refresh(self, source: CountsSource) -> None:
        """Set the gauges read from the database, at most once per REFRESH_SECONDS
        however often it is scraped, and within REFRESH_TIMEOUT_SECONDS (a slow
        database leaves the last values)."""
        if not self.enabled or time.monotonic() - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshing = self._refreshing or asyncio.Lock()
        async with self._refreshing:
            if time.monotonic() - self._refreshed_at < REFRESH_SECONDS:
                return  # another scrape refreshed them while this one waited
            self._refreshed_at = time.monotonic()
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                    counts = await source()
            except Exception:  # the scrape still answers, with the last values
                log.warning("reading the database gauges failed", exc_info=True)
                return
            self.set_counts(counts)

    def set_counts(self, counts: DatabaseCounts) -> None:
        f = self._families
        f.active_sessions.set(counts.active_sessions)
        for kind in JOB_KINDS:
            for state in JOB_STATES:
                self._child(f.jobs, kind, state).set(counts.jobs.get((kind, state), 0))

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """In multiprocess mode, drop this process's live gauges (its open sockets)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        mode = f"multiprocess at {self.multiprocess_dir}" if self.multiprocess_dir else "local"
        return f"Metrics(enabled={self.enabled}, {mode})"
