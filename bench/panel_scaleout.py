"""Scale-out of panel evaluations over arq workers on Redis.

Target: with arq on Redis, 4 worker processes finish an upstream-bound evaluation at
least 3.5x faster than 1 (the baseline, measured in the same run).

The upstream is the loopback fake OpenAI server with a fixed latency, so each job
spends its time waiting on the model, as it would on a real provider. Each worker
runs ``WORKER_CONCURRENCY`` jobs at a time. Workers are started and ready before the
clock starts; the time is from creating the evaluation to its last cell.
Needs ``redis-server`` on PATH (``apt-get install redis-server``).

Run: ``.venv/bin/python bench/panel_scaleout.py [--quick]``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import ROOT, Report, free_port, parse_args, sqlite_url
from gateway_overhead import fake_upstream

LATENCY = 0.3
WORKER_CONCURRENCY = 2
PERSONAS = ("genz-listener", "advertiser", "mohit", "python-tutor")
TARGET_SPEEDUP = 3.5


@contextlib.contextmanager
def redis_server(work: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError("redis-server exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def environment(work: Path, upstream: str, redis_url: str) -> dict[str, str]:
    provider = {"kind": "openai", "base_url": upstream, "model": "fake-model",
                "max_retries": 0, "timeout_seconds": 30}
    return {"PERSONAE_DATA_DIR": str(work), "PERSONAE_DATABASE_URL": sqlite_url(work),
            "PERSONAE_QUEUE": "arq", "PERSONAE_REDIS_URL": redis_url,
            "PERSONAE_DEFAULT_PROVIDER": "upstream",
            "PERSONAE_PROVIDERS": json.dumps({"upstream": provider}),
            "PERSONAE_PANEL_CONCURRENCY": str(WORKER_CONCURRENCY),
            "PERSONAE_LOG_LEVEL": "info"}


@contextlib.contextmanager
def workers(count: int, env: dict[str, str], work: Path) -> Iterator[None]:
    """``count`` ``personae worker`` processes, each ready (its log says so) on return."""
    logs = [work / f"worker-{count}-{n}.log" for n in range(count)]
    processes = []
    for log in logs:
        with log.open("wb") as out:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "personae", "worker"], cwd=ROOT,
                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 60
        while not all("panel worker ready" in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("workers did not start:\n" + logs[0].read_text()[-2000:])
            time.sleep(0.1)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def evaluate(env: dict[str, str], segments: int) -> tuple[float, dict[str, int]]:
    """Create one evaluation (jobs go to Redis) and time it until it completes."""
    from personae.config import Settings
    from personae.panels.service import EvaluationRequest
    from personae.runtime import Runtime

    os.environ.update(env)  # the same settings the workers read from their environment
    settings = Settings()
    runtime = await Runtime.open(settings, watch=False)
    try:
        admin = await runtime.auth.local_admin()
        text = "\n\n".join(f"Segment {n} makes a point. Then it explains it."
                           for n in range(segments))
        started = time.perf_counter()
        evaluation = await runtime.panels.evaluate(admin, EvaluationRequest(
            content=text, personas=list(PERSONAS), classify=False))
        progress = await _finished(runtime, admin, evaluation.id)
        return time.perf_counter() - started, progress.cells
    finally:
        await runtime.close()


async def _finished(runtime, admin, evaluation_id: str):  # type: ignore[no-untyped-def]
    """Poll the database (the workers are other processes) until the evaluation ends."""
    while True:
        progress = await runtime.panels.progress(admin, evaluation_id)
        if progress.status != "running":
            return progress
        await asyncio.sleep(0.05)  # the change happens in another process


async def prepare(env: dict[str, str]) -> None:
    from personae.config import Settings
    from personae.runtime import Runtime

    os.environ.update(env)  # the same settings the workers read from their environment
    settings = Settings()
    runtime = await Runtime.open(settings, watch=False)
    await runtime.load_samples()
    await runtime.close()


def main() -> int:
    args = parse_args("Speed-up of panel evaluations with 4 arq workers instead of 1.")
    if shutil.which("redis-server") is None:
        print("redis-server not found: apt-get install redis-server", file=sys.stderr)
        return 2
    segments = 8 if args.quick else 16
    cells = segments * len(PERSONAS)
    report = Report()
    for name, value in (("upstream_latency_s", LATENCY), ("jobs_per_worker", WORKER_CONCURRENCY),
                        ("cells", cells)):
        report.value(name, value)
    timings: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp, fake_upstream(LATENCY) as upstream, \
            redis_server(Path(tmp)) as redis_url:
        env = environment(Path(tmp), upstream, redis_url)
        asyncio.run(prepare(env))
        for count in (1, 4):
            with workers(count, env, Path(tmp)):
                asyncio.run(evaluate(env, 2))  # warm-up: connections, prompts
                seconds, counts = asyncio.run(evaluate(env, segments))
            timings[count] = seconds
            report.value(f"workers_{count}_s", seconds)
            report.check(f"{count} worker(s): every cell done", counts == {"done": cells},
                         str(counts))
    speedup = timings[1] / timings[4]
    report.value("ideal_1_worker_s", cells / WORKER_CONCURRENCY * LATENCY)
    report.value("speedup_4_vs_1", speedup)
    report.check("4 workers at least 3.5x faster than 1", speedup >= TARGET_SPEEDUP,
                 f"{speedup:.2f}x")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
