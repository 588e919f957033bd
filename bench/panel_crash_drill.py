"""Crash drill: SIGKILL a panel worker mid-evaluation, start another, lose nothing.

Target: the evaluation completes and every cell has exactly one result. Printed:
how many cells were done and in flight when the worker was killed, how long the
replacement took to finish (it must first wait out the killed jobs' in-progress
marks: job timeout + 10 s), and the count of results per cell, read with SQL.

Run: ``.venv/bin/python bench/panel_crash_drill.py`` (needs ``redis-server``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Report, parse_args
from gateway_overhead import fake_upstream
from panel_scaleout import PERSONAS, environment, prepare, redis_server

LATENCY = 0.3
JOB_TIMEOUT = 3
SEGMENTS = 12


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "personae", "worker"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)


async def drill(env: dict[str, str], log: Path, report: Report) -> dict[str, int]:
    from personae.config import Settings
    from personae.panels.service import EvaluationRequest
    from personae.runtime import Runtime

    os.environ.update(env)
    runtime = await Runtime.open(Settings(), watch=False)
    first = start_worker(env, log)
    try:
        admin = await runtime.auth.local_admin()
        text = "\n\n".join(f"Segment {n} states a fact. Then it adds a detail."
                           for n in range(SEGMENTS))
        evaluation = await runtime.panels.evaluate(admin, EvaluationRequest(
            content=text, personas=list(PERSONAS), classify=True))
        at_kill = await _poll(runtime, admin, evaluation.id, lambda c: c.get("done", 0) >= 4
                              and c.get("running", 0) > 0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.perf_counter()
        report.value("done_when_killed", at_kill.get("done", 0))
        report.value("running_when_killed", at_kill.get("running", 0))
        second = start_worker(env, log)
        try:
            final = await _poll(runtime, admin, evaluation.id, lambda c: False)
        finally:
            second.terminate()
            second.wait(timeout=30)
        report.value("replacement_finished_after_s", time.perf_counter() - killed_at)
        report.value("final_status", (await runtime.panels.progress(admin, evaluation.id)).status)
        return {**final, "results_per_cell": await _results_per_cell(runtime, evaluation.id)}
    finally:
        if first.poll() is None:
            first.kill()
        await runtime.close()


async def _poll(runtime, admin, evaluation_id: str, ready) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Poll progress until ``ready(cells)`` or the evaluation is no longer running."""
    while True:
        progress = await runtime.panels.progress(admin, evaluation_id)
        if progress.status != "running" or ready(progress.cells):
            return progress.cells
        await asyncio.sleep(0.05)  # the change happens in another process


async def _results_per_cell(runtime, evaluation_id: str) -> int:  # type: ignore[no-untyped-def]
    """The most rows any one (segment, persona) has: 1 means no duplicate result."""
    import sqlalchemy as sa

    from personae.db.tables import evaluation_scores as scores

    query = (sa.select(sa.func.count()).where(scores.c.evaluation_id == evaluation_id)
             .group_by(scores.c.segment_index, scores.c.persona_id))
    async with runtime.engine.connect() as conn:
        return max((await conn.execute(query)).scalars().all())


def main() -> int:
    parse_args("SIGKILL a panel worker mid-evaluation; a new one finishes the job.")
    if shutil.which("redis-server") is None:
        print("redis-server not found: apt-get install redis-server", file=sys.stderr)
        return 2
    report = Report()
    cells = SEGMENTS * len(PERSONAS)
    report.value("cells", cells)
    with tempfile.TemporaryDirectory() as tmp, fake_upstream(LATENCY) as upstream, \
            redis_server(Path(tmp)) as redis_url:
        env = {**environment(Path(tmp), upstream, redis_url),
               "PERSONAE_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT)}
        asyncio.run(prepare(env))
        found = asyncio.run(drill(env, Path(tmp) / "workers.log", report))
    per_cell = found.pop("results_per_cell")
    report.value("results_per_cell_max", per_cell)
    report.check("evaluation completes with every cell done", found == {"done": cells},
                 str(found))
    report.check("exactly one result per cell", per_cell == 1, f"at most {per_cell}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
