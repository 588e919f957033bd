"""Syncing 10,000 persona files into a fresh SQLite store, re-syncing, and listing them.

Targets (full run, 10,000 files): first sync < 60 s; the second sync of the same folder
reports every persona unchanged, writes no version and is >= 5x faster; ``GET
/v1/personas?limit=50`` through a real server has a median < 50 ms. ``--quick`` uses
1,000 files and a 6 s first-sync target (the other targets are unchanged).

Run: ``.venv/bin/python bench/sync_10k.py [--quick]``
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from _common import (
    CLIENT_CPU,
    Report,
    Server,
    admin_key,
    median,
    parse_args,
    percentile,
    personae_env,
    pin_self,
    running_server,
    sqlite_url,
)
from _personas_gen import generate
from personae.db.engine import make_engine, migrate
from personae.db.tables import persona_versions
from personae.personas.files import SyncReport, sync_folder
from personae.personas.store import PersonaStore

SPEEDUP_TARGET = 5.0
LIST_TARGET_MS = 50.0
WARMUP = 20
SAMPLES = 200


@dataclass
class SyncResult:
    first: SyncReport
    first_s: float
    second: SyncReport
    second_s: float
    stored: int
    versions: int
    max_version: int


async def _timed_sync(store: PersonaStore, folder: Path) -> tuple[SyncReport, float]:
    start = time.perf_counter()
    report = await sync_folder(store, folder, author="bench")
    return report, time.perf_counter() - start


async def _version_stats(store: PersonaStore) -> tuple[int, int]:
    query = sa.select(sa.func.count(), sa.func.max(persona_versions.c.number))
    async with store.engine.connect() as conn:
        count, highest = (await conn.execute(query)).one()
    return int(count), int(highest or 0)


async def run_syncs(database_url: str, folder: Path) -> SyncResult:
    """Migrate a fresh store (untimed), then time two syncs of ``folder``."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        store = PersonaStore(engine)
        first, first_s = await _timed_sync(store, folder)
        second, second_s = await _timed_sync(store, folder)
        versions, max_version = await _version_stats(store)
        return SyncResult(first, first_s, second, second_s, await store.count(), versions,
                          max_version)
    finally:
        await engine.dispose()


def report_syncs(result: SyncResult, count: int, limit_s: float, report: Report) -> None:
    first, second = result.first, result.second
    speedup = result.first_s / result.second_s if result.second_s > 0 else float("inf")
    report.value("first_sync_s", result.first_s)
    report.value("first_sync_created", len(first.created))
    report.value("first_sync_invalid", len(first.invalid))
    report.value("second_sync_s", result.second_s)
    report.value("second_sync_unchanged", len(second.unchanged))
    report.value("speedup", speedup, 1)
    report.value("stored_personas", result.stored)
    report.value("stored_versions", result.versions)
    report.check("first_sync_counts", first.applied and len(first.created) == count
                 and not (first.updated or first.unchanged or first.invalid),
                 f"created {len(first.created)}/{count}, updated {len(first.updated)}, "
                 f"unchanged {len(first.unchanged)}, invalid {len(first.invalid)}")
    report.check("second_sync_all_unchanged", len(second.unchanged) == count
                 and not (second.created or second.updated or second.invalid),
                 f"unchanged {len(second.unchanged)}/{count}, created {len(second.created)}, "
                 f"updated {len(second.updated)}, invalid {len(second.invalid)}")
    report.check("no_new_versions", result.stored == count and result.versions == count
                 and result.max_version == 1,
                 f"{result.stored} personas, {result.versions} versions, "
                 f"highest version {result.max_version}")
    report.check("first_sync_time", result.first_s < limit_s,
                 f"{result.first_s:.2f} s (target < {limit_s:g} s)")
    report.check("second_sync_speedup", speedup >= SPEEDUP_TARGET,
                 f"{speedup:.1f}x (target >= {SPEEDUP_TARGET:g}x)")


def _get_ms(client: httpx.Client, path: str, expect_count: int | None) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status_code} {response.text[:300]}")
    if expect_count is not None and response.json()["count"] != expect_count:
        raise RuntimeError(f"GET {path}: count {response.json()['count']} != {expect_count}")
    return elapsed


def time_requests(server: Server, key: str, paths: dict[str, str],
                  expected: dict[str, int | None]) -> dict[str, list[float]]:
    """Interleave the requests (one of each per round) so noise hits them alike."""
    timings: dict[str, list[float]] = {name: [] for name in paths}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        for round_index in range(WARMUP + SAMPLES):
            for name, path in paths.items():
                elapsed = _get_ms(client, path, expected.get(name))
                if round_index >= WARMUP:
                    timings[name].append(elapsed)
    return timings


def listing_paths() -> dict[str, str]:
    return {
        "health": "/health",
        "list_page1": "/v1/personas?limit=50",
        "list_filtered": "/v1/personas?limit=50&tag=astrology&language=hi",
        "list_text": "/v1/personas?limit=50&q=tutor",
    }


def result_counts(server: Server, key: str, paths: dict[str, str]) -> dict[str, int]:
    """How many personas each listing query matches (``count`` in the response)."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        return {name: client.get(path).json()["count"] for name, path in paths.items()
                if name != "health"}


def report_listing(timings: dict[str, list[float]], report: Report) -> None:
    for name, values in timings.items():
        report.value(f"{name}_median_ms", median(values))
        report.value(f"{name}_p95_ms", percentile(values, 95))
    page1 = median(timings["list_page1"])
    report.value("ratio_list_page1_vs_health", page1 / median(timings["health"]), 2)
    report.check("list_page1_median", page1 < LIST_TARGET_MS,
                 f"{page1:.2f} ms (target < {LIST_TARGET_MS:g} ms)")


def main() -> int:
    args = parse_args(__doc__ or "")
    count, limit_s = (1_000, 6.0) if args.quick else (10_000, 60.0)
    pin_self(CLIENT_CPU)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        folder = work / "personas"
        size = generate(folder, count)
        report.value("files", count)
        report.value("mean_file_bytes", size / count, 0)
        url = sqlite_url(work)
        result = asyncio.run(run_syncs(url, folder))
        report_syncs(result, count, limit_s, report)
        key = admin_key(url)
        with running_server("personae", "personae.api.app:create_app",
                            personae_env(work, url)) as server:
            timings = time_requests(server, key, listing_paths(), {"list_page1": count})
            counts = result_counts(server, key, listing_paths())
        report.value("listing_samples", SAMPLES)
        for name, matched in counts.items():
            report.value(f"{name}_count", matched)
        report.check("listing_queries_match", all(counts.values()),
                     "every listing query matched at least one persona")
        report_listing(timings, report)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
