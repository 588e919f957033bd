"""Parallel efficiency of a panel evaluation on the in-process queue.

Target: with a loopback upstream of fixed latency L and an in-flight limit C, N
segments x P personas finish in at most 1.1 x ceil(N*P/C) x L plus classification
time (parallel efficiency at least 90%).

Baseline, measured in the same run: the same number of requests sent straight to
the upstream with the ``openai`` client, C at a time (what the model calls alone
cost). Personae runs twice: scoring only (checked against the formula and the
baseline), then with classification (checked against the formula, with the
classification time taken as N/C rounds of L, the best it could do).

Run: ``.venv/bin/python bench/panel_parallel.py [--quick]``
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

from _common import Report, parse_args, sqlite_url
from gateway_overhead import fake_upstream

LATENCY = 0.2
CONCURRENCY = 8
PERSONAS = ("genz-listener", "advertiser", "mohit", "python-tutor")
TARGET_EFFICIENCY = 0.90
MESSAGES = [{"role": "user", "content": "Rate this."}]


def transcript(segments: int) -> str:
    """``segments`` paragraphs of two sentences (one segment each)."""
    return "\n\n".join(f"Segment {n} opens with a claim. It ends with a reason."
                       for n in range(segments))


async def direct(base_url: str, requests: int) -> float:
    """Seconds for ``requests`` upstream calls, CONCURRENCY at a time, no Personae."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0,
                         http_client=DefaultAioHttpClient())
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with slots:
            await client.post("/chat/completions", cast_to=object,
                              body={"model": "fake-model", "messages": MESSAGES})

    await one()  # warm the connection pool
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def through_personae(base_url: str, work: Path, segments: int,
                           classify: bool) -> tuple[float, dict[str, int]]:
    from personae.config import ProviderConfig, Settings
    from personae.panels.service import EvaluationRequest
    from personae.runtime import Runtime

    provider = ProviderConfig(kind="openai", base_url=base_url, model="fake-model",
                              max_retries=0, timeout_seconds=30)
    settings = Settings(data_dir=work, database_url=sqlite_url(work), providers={
        "upstream": provider}, default_provider="upstream", panel_concurrency=CONCURRENCY)
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.load_samples()
        admin = await runtime.auth.local_admin()
        request = EvaluationRequest(content=transcript(segments), personas=list(PERSONAS),
                                    classify=classify)
        await _warm_up(runtime, admin)
        started = time.perf_counter()
        evaluation = await runtime.panels.evaluate(admin, request)
        await runtime.panels.queue.drain()  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - started
        progress = await runtime.panels.progress(admin, evaluation.id)
        return elapsed, progress.cells
    finally:
        await runtime.close()


async def _warm_up(runtime, admin) -> None:  # type: ignore[no-untyped-def]
    """One tiny evaluation first, so imports and connections are not timed."""
    from personae.panels.service import EvaluationRequest

    await runtime.panels.evaluate(admin, EvaluationRequest(
        content="Warm up.", personas=list(PERSONAS), classify=True))
    await runtime.panels.queue.drain()


def main() -> int:
    args = parse_args("Parallel efficiency of panel evaluations (in-process queue).")
    segments = 10 if args.quick else 40
    cells = segments * len(PERSONAS)
    ideal = math.ceil(cells / CONCURRENCY) * LATENCY
    classification = math.ceil(segments / CONCURRENCY) * LATENCY
    report = Report()
    for name, value in (("upstream_latency_s", LATENCY), ("in_flight_limit", CONCURRENCY),
                        ("segments", segments), ("personas", len(PERSONAS)), ("cells", cells),
                        ("ideal_scoring_s", ideal)):
        report.value(name, value)
    with fake_upstream(LATENCY) as base_url, tempfile.TemporaryDirectory() as tmp:
        baseline = asyncio.run(direct(base_url, cells))
        for name in ("a", "b"):
            (Path(tmp) / name).mkdir()
        scoring, counts = asyncio.run(through_personae(base_url, Path(tmp) / "a", segments,
                                                       classify=False))
        full, full_counts = asyncio.run(through_personae(base_url, Path(tmp) / "b", segments,
                                                         classify=True))
    report.value("direct_baseline_s", baseline)
    report.value("personae_scoring_s", scoring)
    report.value("personae_with_classification_s", full)
    report.value("efficiency_vs_formula", ideal / scoring)
    report.value("ratio_vs_direct_baseline", baseline / scoring)
    report.value("with_classification_vs_formula", (ideal + classification) / full)
    report.check("scoring within 1.1 x ceil(N*P/C) x L", scoring <= 1.1 * ideal
                 and counts == {"done": cells}, f"{scoring:.2f}s vs {1.1 * ideal:.2f}s, {counts}")
    report.check("with classification within 1.1 x ceil(N*P/C) x L + classification",
                 full <= 1.1 * ideal + classification and full_counts == {"done": cells},
                 f"{full:.2f}s vs {1.1 * ideal + classification:.2f}s, {full_counts}")
    report.check("scoring at least 90% of direct calls",
                 baseline / scoring >= TARGET_EFFICIENCY and counts == {"done": cells},
                 f"{baseline / scoring:.3f}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
