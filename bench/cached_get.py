"""Cached ``GET /v1/personas/{id}`` throughput against a bare FastAPI baseline.

Target: the real endpoint (auth + registry cache hit + pre-serialised body) serves at
least 80% of the requests per second of a bare FastAPI route returning the same JSON
from a dict, with the same uvicorn settings, in the same run. It also runs the real
server with rate limits and metrics off and checks that they add under 0.2 ms per
request at the median (sequential requests on one connection), printing what they add
in server CPU time per request under load.

Run: ``.venv/bin/python bench/cached_get.py [--quick]``
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import (
    BENCH_DIR,
    CLIENT_CPU,
    Report,
    Server,
    admin_key,
    check_ops_modes,
    median,
    parse_args,
    personae_env,
    pin_self,
    process_cpu_seconds,
    report_ops_cost,
    rotated,
    sqlite_url,
    start_server,
    stop_server,
    uvicorn_flags,
)
from _load import LoadResult, run_load
from personae.config import Settings
from personae.personas.files import sync_folder
from personae.runtime import Runtime, samples_folder

TARGET_RATIO = 0.80
CONCURRENCY = 32
OPS_ON, OPS_OFF = "personae_cached", "personae_ops_off"
INLINE_PERSONA = """\
id: bench-persona
name: Meera Iyer
description: A calm, practical career coach for early-career engineers in India.
tags: [career, coaching, engineering, english]
role: career coach
speciality: First jobs and promotions
language: en
system_prompt: >-
  You help engineers plan their first five years: picking teams, asking for
  feedback, preparing for promotions and negotiating offers. Be concrete and kind.
greetings:
  - Hi, I'm Meera. What's on your mind about work today?
example_dialogues:
  - user: Should I switch teams after one year?
    reply: Maybe. Tell me what you are learning now and what you want to learn next.
expertise_keywords: [career, promotion, negotiation, feedback, interviews]
traits:
  consultation_style: {pace: steady, question_style: one question at a time}
  personality_traits: {warmth: 8, directness: 7, humor: 4}
"""


def _persona_folder(work: Path) -> tuple[Path, str]:
    """A folder holding one rich persona: the largest sample, else an inline one."""
    folder = work / "personas"
    folder.mkdir()
    samples = sorted(samples_folder().glob("*.yaml"), key=lambda p: p.stat().st_size)
    if samples:
        shutil.copy(samples[-1], folder / samples[-1].name)
    else:
        (folder / "bench-persona.yaml").write_text(INLINE_PERSONA, encoding="utf-8")
    return folder, (samples[-1].stem if samples else "bench-persona")


async def _load_persona(settings: Settings, folder: Path) -> str:
    runtime = await Runtime.open(settings, watch=False)
    try:
        report = await sync_folder(runtime.store, folder, author="bench")
    finally:
        await runtime.close()
    if not report.applied or len(report.created) != 1:
        raise RuntimeError(f"could not load the benchmark persona: {report.to_dict()}")
    return report.created[0]


def prepare_store(work: Path) -> tuple[str, str, str]:
    """Create the store; returns (database url, persona id, admin API key)."""
    folder, _ = _persona_folder(work)
    url = sqlite_url(work)
    settings = Settings(data_dir=work, database_url=url)
    persona_id = asyncio.run(_load_persona(settings, folder))
    return url, persona_id, admin_key(url)


def fetch_body(server: Server, path: str, headers: dict[str, str]) -> bytes:
    response = httpx.get(server.base_url + path, headers=headers, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"{server.name} {path}: HTTP {response.status_code} "
                           f"{response.text[:300]}")
    return response.content


def start_all(work: Path, url: str, persona_id: str,
              headers: dict[str, str]) -> tuple[dict[str, Server], bytes]:
    """Start the real server, capture its body, then start the same server with rate
    limits and metrics off and both bare baselines."""
    servers: dict[str, Server] = {}
    try:
        servers[OPS_ON] = start_server(
            "personae", "personae.api.app:create_app", personae_env(work, url))
        body = fetch_body(servers[OPS_ON], f"/v1/personas/{persona_id}", headers)
        servers[OPS_OFF] = start_server(OPS_OFF, "personae.api.app:create_app",
                                        personae_env(work, url, ops=False))
        body_file = work / "bare.json"
        body_file.write_text(json.dumps({persona_id: json.loads(body)}, ensure_ascii=False),
                             encoding="utf-8")
        for mode in ("dict", "bytes"):
            env = {"BENCH_BARE_JSON": str(body_file), "BENCH_BARE_MODE": mode}
            servers[f"bare_{mode}"] = start_server(f"bare_{mode}", "_bare_app:create_app",
                                                   env, app_dir=BENCH_DIR)
    except BaseException:
        for server in servers.values():
            stop_server(server)
        raise
    return servers, body


def check_bodies(servers: dict[str, Server], path: str, headers: dict[str, str],
                 real_body: bytes, report: Report) -> None:
    """All servers must return the same JSON document."""
    expected = json.loads(real_body)
    same = all(json.loads(fetch_body(s, path, headers)) == expected for s in servers.values())
    report.value("body_bytes", len(real_body))
    report.check("same_json_body", same, "bare and real servers return the same JSON"
                 if same else "bodies differ between servers")


@dataclass(frozen=True)
class Sample:
    """One timed run against one server: the load result and the server's CPU time."""

    load: LoadResult
    server_cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / self.load.requests if self.load.requests else math.nan


def timed_run(server: Server, path: str, headers: dict[str, str], seconds: float) -> Sample:
    before = process_cpu_seconds(server.process.pid)
    load = run_load(server.base_url + path, headers, CONCURRENCY, seconds)
    return Sample(load, process_cpu_seconds(server.process.pid) - before)


def measure(servers: dict[str, Server], path: str, headers: dict[str, str],
            rounds: int, seconds: float) -> dict[str, list[Sample]]:
    """Warm each server up, then alternate runs, rotating the order every round."""
    names = list(servers)
    for name in names:
        run_load(servers[name].base_url + path, headers, CONCURRENCY, min(seconds, 2.0))
    results: dict[str, list[Sample]] = {name: [] for name in names}
    for index in range(rounds):
        for name in rotated(names, index):
            results[name].append(timed_run(servers[name], path, headers, seconds))
    return results


@dataclass
class Sequential:
    """Latencies (ms) of sequential requests on one keep-alive connection per server."""

    latencies: dict[str, list[float]]
    failed: int  # answers other than 200 (a 429 means the benchmark's limits are wrong)


def sequential(servers: dict[str, Server], path: str, headers: dict[str, str],
               total: int, block: int) -> Sequential:
    """``total`` GETs per server after a warm-up, in blocks whose order rotates."""
    found = Sequential({name: [] for name in servers}, 0)
    with httpx.Client(headers=headers, timeout=10) as client:

        def timed(server: Server) -> float:
            started = time.perf_counter()
            status = client.get(server.base_url + path).status_code
            elapsed = (time.perf_counter() - started) * 1000
            found.failed += status != 200
            return elapsed

        for server in servers.values():
            for _ in range(100):
                timed(server)
        for index in range(total // block):
            for name in rotated(list(servers), index):
                found.latencies[name].extend(timed(servers[name]) for _ in range(block))
    return found


def summarise(results: dict[str, list[Sample]], report: Report) -> None:
    rps = {name: median([r.load.rps for r in runs]) for name, runs in results.items()}
    cpu = {name: median([r.cpu_us_per_request for r in runs]) for name, runs in results.items()}
    for name in ("bare_dict", "bare_bytes", OPS_ON, OPS_OFF):
        report.value(f"{name}_rps", rps[name], 1)
        report.value(f"{name}_runs_rps", " ".join(f"{r.load.rps:.0f}" for r in results[name]))
        report.value(f"{name}_server_cpu_us_per_req", cpu[name], 1)
    vs_dict = rps["personae_cached"] / rps["bare_dict"]
    report.value("ratio_vs_bare_dict", vs_dict)
    report.value("ratio_vs_bare_bytes", rps["personae_cached"] / rps["bare_bytes"])
    # CPU per request is far less sensitive to other load on the machine than rps.
    report.value("cpu_ratio_vs_bare_dict", cpu["bare_dict"] / cpu["personae_cached"])
    report.value("cpu_ratio_vs_bare_bytes", cpu["bare_bytes"] / cpu["personae_cached"])
    for name, runs in results.items():
        bad = sum(r.load.non_2xx + r.load.errors for r in runs)
        total = sum(r.load.requests for r in runs)
        report.check(f"{name}_all_2xx", bad == 0 and total > 0,
                     f"{bad} non-2xx responses or socket errors in {total} requests")
    report.check("ratio_vs_bare_dict", vs_dict >= TARGET_RATIO,
                 f"{vs_dict:.3f} (target >= {TARGET_RATIO:.2f})")


def summarise_ops(found: Sequential, results: dict[str, list[Sample]],
                  report: Report) -> None:
    """What rate limits and metrics add: sequential latency, and CPU under load."""
    cpu = {name: median([r.cpu_us_per_request for r in results[name]])
           for name in (OPS_ON, OPS_OFF)}
    report_ops_cost(report, found.latencies[OPS_ON], found.latencies[OPS_OFF],
                    cpu[OPS_ON], cpu[OPS_OFF])
    total = sum(len(values) for values in found.latencies.values())
    report.check("ops_sequential_all_200", found.failed == 0 and total > 0,
                 f"{found.failed} answers other than 200 in {total} sequential requests")


def main() -> int:
    args = parse_args(__doc__ or "")
    rounds, seconds = (2, 3.0) if args.quick else (3, 10.0)
    total, block = (1000, 100) if args.quick else (3000, 100)
    pin_self(CLIENT_CPU)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench-cached-get-") as tmp:
        work = Path(tmp)
        url, persona_id, key = prepare_store(work)
        headers = {"Authorization": f"Bearer {key}"}
        path = f"/v1/personas/{persona_id}"
        report.value("persona_id", persona_id)
        report.value("server_flags", " ".join(uvicorn_flags()))
        servers, body = start_all(work, url, persona_id, headers)
        try:
            check_bodies(servers, path, headers, body, report)
            check_ops_modes(report, servers[OPS_ON], servers[OPS_OFF], path, headers)
            ops = sequential({name: servers[name] for name in (OPS_ON, OPS_OFF)}, path,
                             headers, total, block)
            results = measure(servers, path, headers, rounds, seconds)
        finally:
            for server in servers.values():
                stop_server(server)
        tool = results["bare_dict"][0].load.tool
        report.value("load_generator", tool)
        if tool != "wrk":
            report.value("load_generator_note", "client-bound: install wrk for meaningful ratios")
        report.value("concurrency", CONCURRENCY)
        report.value("rounds_x_seconds", f"{rounds}x{seconds:g}")
        summarise(results, report)
        report.value("ops_sequential_requests_x_block", f"{total}x{block}")
        summarise_ops(ops, results, report)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
