"""Readiness and the detailed health report: is each dependency there, and how well.

``/health`` is liveness (the process answers). Readiness asks whether this process can
serve: the database answers within a short bound and its schema is at the head
revision. The detailed report adds Redis, providers (breakers), the embedded model,
voice models, disk space and queue depth, and sums them up: ``down`` when the database
is unreachable, ``degraded`` when Redis is down, a breaker is open, a disk is nearly
full or migrations are behind, else ``ok``. Every check runs under its own timeout, so
a hung dependency makes the report say so instead of stalling it.

The pieces come in as small callables (:class:`HealthSources`): nothing here imports
the runtime or a web framework.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil  # type: ignore[import-untyped]

from personae.errors import PersonaeError
from personae.ops.metrics import DatabaseCounts
from personae.providers.registry import ProviderRegistry
from personae.providers.resilience import CircuitBreaker
from personae.providers.speech_registry import LOCAL_KINDS, SpeechProviders

Status = Literal["ok", "degraded", "down"]
DATABASE_TIMEOUT_SECONDS = 2.0
REDIS_TIMEOUT_SECONDS = 1.0
DISK_TIMEOUT_SECONDS = 1.0
COUNTS_TIMEOUT_SECONDS = 2.0
LOW_DISK_FRACTION = 0.05
LOW_DISK_BYTES = 1 << 30
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model provider built in this process: its name and whether it is in memory."""

    provider: str
    model: str | None
    loaded: bool


@dataclass
class HealthSources:
    """What the checks ask; each callable is cheap or bounded by the checker."""

    revision: Callable[[], Awaitable[str | None]]  # the database's schema revision
    head: str | None  # the revision this release's migrations end at
    breakers: Callable[[], Mapping[str, CircuitBreaker]]
    counts: Callable[[], Awaitable[DatabaseCounts]]
    disks: Mapping[str, Path] = field(default_factory=dict)  # label -> directory
    redis: Callable[[], Awaitable[float | None]] | None = None  # seconds; raises if down
    queue: Callable[[], Awaitable[float | None]] | None = None  # the job queue's Redis
    models: Callable[[], list[LoadedModel]] = list
    voice_models: Callable[[], list[dict[str, Any]]] = list


class NotReady(PersonaeError):
    """This process cannot serve yet: the database is away or not migrated."""

    code = "not_ready"
    status = 503


class Down(PersonaeError):
    """The detailed report's verdict when the database is unreachable."""

    code = "down"
    status = 503


def _error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return (str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]


def _when(moment: float | None) -> str | None:
    return datetime.fromtimestamp(moment, UTC).isoformat() if moment is not None else None


async def _timed(work: Awaitable[Any], seconds: float) -> tuple[Any, float]:
    started = time.perf_counter()
    async with asyncio.timeout(seconds):
        result = await work
    return result, round((time.perf_counter() - started) * 1000, 2)


class Health:
    """Readiness and the detailed report over :class:`HealthSources`."""

    def __init__(self, sources: HealthSources) -> None:
        self.sources = sources

    async def database(self) -> dict[str, Any]:
        """Reachable within DATABASE_TIMEOUT_SECONDS, its latency, revision and head."""
        head = self.sources.head
        try:
            revision, latency = await _timed(self.sources.revision(), DATABASE_TIMEOUT_SECONDS)
        except Exception as exc:
            return {"ok": False, "error": _error(exc), "head": head}
        return {"ok": True, "latency_ms": latency, "revision": revision, "head": head,
                "migrated": revision == head}

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process can serve: the database answers and is migrated."""
        database = await self.database()
        if not database["ok"]:
            return False, {"status": "not_ready", "reason": "the database is unreachable: "
                           f"{database['error']}", "database": database}
        if not database["migrated"]:
            return False, {"status": "not_ready", "reason": (
                f"the database is at revision {database['revision']}, not {database['head']}: "
                "run `personae db upgrade`"), "database": database}
        return True, {"status": "ready", "database": database}

    async def detailed(self) -> dict[str, Any]:
        """Every check, run together, each under its own bound, and the overall status."""
        database, redis, queue, disks, jobs = await asyncio.gather(
            self.database(), self._ping(self.sources.redis), self._ping(self.sources.queue),
            self._disks(), self._jobs())
        providers = self._providers()
        report: dict[str, Any] = {
            "database": database, "redis": redis, "queue": {**queue, **jobs},
            "providers": providers, "embedded_models": self._models(),
            "voice_models": self.sources.voice_models(), "disk": disks,
            "process": {"pid": os.getpid(), "rss_bytes": psutil.Process().memory_info().rss}}
        report["problems"] = _problems(report)
        report["status"] = _overall(database, report["problems"])
        return report

    async def _ping(self, ping: Callable[[], Awaitable[float | None]] | None
                    ) -> dict[str, Any]:
        if ping is None:
            return {"configured": False}
        try:
            seconds, _ = await _timed(ping(), REDIS_TIMEOUT_SECONDS)
        except Exception as exc:
            return {"configured": True, "ok": False, "error": _error(exc)}
        shown = round(seconds * 1000, 2) if isinstance(seconds, float) else None
        return {"configured": True, "ok": True, "latency_ms": shown}

    async def _jobs(self) -> dict[str, Any]:
        try:
            counts, _ = await _timed(self.sources.counts(), COUNTS_TIMEOUT_SECONDS)
        except Exception as exc:
            return {"depth": None, "error": _error(exc)}
        jobs = {f"{kind}_{state}": n for (kind, state), n in sorted(counts.jobs.items())}
        depth = sum(n for (_, state), n in counts.jobs.items() if state == "queued")
        return {"depth": depth, "jobs": jobs, "active_sessions": counts.active_sessions}

    def _providers(self) -> dict[str, Any]:
        return {name: {"state": breaker.state, "last_error": breaker.last_error,
                       "last_failure_at": _when(breaker.last_failure_at),
                       "last_success_at": _when(breaker.last_success_at),
                       "retry_after_seconds": round(breaker.retry_after(), 3)}
                for name, breaker in sorted(self.sources.breakers().items())}

    def _models(self) -> list[dict[str, Any]]:
        return [{"provider": m.provider, "model": m.model, "loaded": m.loaded}
                for m in self.sources.models()]

    async def _disks(self) -> dict[str, Any]:
        found = await asyncio.gather(*(self._disk(path) for path in self.sources.disks.values()))
        return dict(zip(self.sources.disks, found, strict=True))

    async def _disk(self, path: Path) -> dict[str, Any]:
        try:
            usage, _ = await _timed(asyncio.to_thread(_usage, path), DISK_TIMEOUT_SECONDS)
        except Exception as exc:
            return {"path": str(path), "ok": False, "error": _error(exc)}
        low = usage.free < LOW_DISK_BYTES or usage.free < usage.total * LOW_DISK_FRACTION
        return {"path": str(path), "ok": not low, "free_bytes": usage.free,
                "total_bytes": usage.total,
                "free_fraction": round(usage.free / usage.total, 4) if usage.total else None}


def _usage(path: Path) -> Any:
    """Disk usage of ``path``, or of its nearest existing parent (made on first use)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path)


def _problems(report: dict[str, Any]) -> list[str]:
    """Why the report is not ``ok``, one phrase per cause."""
    problems: list[str] = []
    database = report["database"]
    if not database["ok"]:
        problems.append(f"database unreachable: {database['error']}")
    elif not database["migrated"]:
        problems.append(f"database at revision {database['revision']}, not {database['head']}")
    for name in ("redis", "queue"):
        if report[name].get("ok") is False:
            problems.append(f"{name} unreachable: {report[name]['error']}")
    problems += [f"provider {name}: circuit open" for name, each in report["providers"].items()
                 if each["state"] == "open"]
    problems += [f"disk {label}: low on space or unreadable"
                 for label, disk in report["disk"].items() if not disk["ok"]]
    return problems


def _overall(database: dict[str, Any], problems: list[str]) -> Status:
    if not database["ok"]:
        return "down"
    return "degraded" if problems else "ok"


# -- the sources, from the parts of a process ----------------------------------------

class SessionCounter(Protocol):
    async def count_open_sessions(self) -> int: ...


class CellCounter(Protocol):
    async def count_cells(self) -> dict[str, int]: ...


class RunCounter(Protocol):
    async def count_open(self) -> dict[str, int]: ...


def database_counts(sessions: SessionCounter, cells: CellCounter,
                    runs: RunCounter) -> Callable[[], Awaitable[DatabaseCounts]]:
    """Open sessions, and panel cells / test runs waiting and running."""
    async def read() -> DatabaseCounts:
        open_sessions = await sessions.count_open_sessions()
        scoring = await cells.count_cells()
        testing = await runs.count_open()
        return DatabaseCounts(open_sessions, {
            ("panel", "queued"): scoring.get("pending", 0),
            ("panel", "running"): scoring.get("running", 0),
            ("test", "queued"): testing.get("queued", 0),
            ("test", "running"): testing.get("running", 0)})

    return read


def breakers_of(providers: ProviderRegistry, speech: SpeechProviders
                ) -> Callable[[], dict[str, CircuitBreaker]]:
    return lambda: {**providers.breakers(), **speech.breakers()}


def embedded_models(providers: ProviderRegistry) -> Callable[[], list[LoadedModel]]:
    """The built providers that hold a model in this process (they tell ``loaded``)."""
    def found() -> list[LoadedModel]:
        built = [(name, llm, getattr(llm, "loaded", None))
                 for name, llm in sorted(providers.built().items())]
        return [LoadedModel(name, getattr(llm, "model", None), loaded)
                for name, llm, loaded in built if isinstance(loaded, bool)]

    return found


def voice_models(speech: SpeechProviders) -> Callable[[], list[dict[str, Any]]]:
    """The local speech models built in this process (they load on first use)."""
    def found() -> list[dict[str, Any]]:
        return [{"group": group, "name": name, "kind": type(each).__name__}
                for group, name, each in speech.built()
                if speech.config(group, name).kind in LOCAL_KINDS]

    return found


def queue_ping(queue: object) -> Callable[[], Awaitable[float | None]] | None:
    """A ping of the job queue's Redis, when the queue has one (arq); else None."""
    connect = getattr(queue, "redis", None)
    if connect is None:
        return None

    async def ping() -> float:
        started = time.perf_counter()
        await (await connect()).ping()
        return time.perf_counter() - started

    return ping
