"""What ``/v1/chat/completions`` adds on top of the model provider it forwards to.

Target: with a loopback OpenAI-protocol upstream answering after a fixed latency, the
same requests are sent directly to it and through Personae. The added latency is at
most 1 ms at the median and at most 3 ms at p99 at concurrency 1; at concurrency 100
Personae serves at least 90% of the direct requests per second. (For scale: LiteLLM's
proxy adds about 4 ms.) ``--stream`` sends the same requests streamed (SSE) both ways.
A second Personae server with rate limits and metrics off gets the same requests: they
must add under 0.2 ms at the median at concurrency 1; their CPU cost per request at
concurrency 100 is printed.

Run: ``.venv/bin/python bench/gateway_overhead.py [--quick] [--stream]``
"""

from __future__ import annotations

import argparse
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import (
    CLIENT_CPU,
    HOST,
    ROOT,
    Report,
    Server,
    check_ops_modes,
    free_port,
    median,
    parse_args,
    percentile,
    personae_env,
    pin_self,
    process_cpu_seconds,
    report_ops_cost,
    rotated,
    sqlite_url,
    start_server,
    stop_server,
    taskset_prefix,
)
from _load import LoadResult, parse_wrk

DEFAULT_LATENCY = 0.05
MAX_TOKENS = 8
MESSAGES = [{"role": "user", "content": "Please say hello to everyone running this benchmark."}]
PERSONA = {"id": "bench-gateway", "name": "Bench", "system_prompt": "Be brief."}
TARGET_ADDED_MEDIAN_MS = 1.0
TARGET_ADDED_P99_MS = 3.0
TARGET_THROUGHPUT_RATIO = 0.90
HIGH_CONCURRENCY = 100
PY_PROCESSES = 4
CEILING_MARGIN = 1.2
OPS_ON, OPS_OFF = "personae", "personae_ops_off"


@dataclass(frozen=True)
class Target:
    """One way to send the request: straight to the upstream, or through Personae."""

    name: str
    url: str
    headers: dict[str, str]
    body: bytes


# -- servers -------------------------------------------------------------------------


@contextlib.contextmanager
def fake_upstream(latency: float) -> Iterator[str]:
    """The fake OpenAI server as its own process (pinned next to the client)."""
    port = free_port()
    command = [*taskset_prefix(CLIENT_CPU), sys.executable, "-m",
               "personae.providers.fake.openai_server", "--port", str(port),
               "--latency", str(latency)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}/v1"
    try:
        _wait_for(f"{base}/models", process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


async def _prepare(data_dir: Path, database_url: str) -> str:
    """A store with the persona and an admin key (returned)."""
    from personae.auth.principal import Principal, Role
    from personae.config import Settings
    from personae.runtime import Runtime

    runtime = await Runtime.open(Settings(data_dir=data_dir, database_url=database_url),
                                 watch=False)
    try:
        user = await runtime.users.create_user("bench-admin", Role.admin)
        key, _ = await runtime.users.create_key("bench-admin", "bench")
        admin = Principal(user.id, user.name, user.role)
        await runtime.personas.create(admin, PERSONA, global_scope=True)
        return key
    finally:
        await runtime.close()


@contextlib.contextmanager
def personae_servers(work: Path, upstream: str) -> Iterator[tuple[dict[str, Server], str]]:
    """Two Personae servers on one store, rate limits and metrics on and off; and the
    admin key."""
    database_url = sqlite_url(work)
    key = asyncio.run(_prepare(work, database_url))
    provider = {"kind": "openai", "base_url": upstream, "api_key": "bench",
                "model": "fake-model", "max_retries": 0, "timeout_seconds": 30}
    servers: dict[str, Server] = {}
    try:
        for name, ops in ((OPS_ON, True), (OPS_OFF, False)):
            env = {**personae_env(work, database_url, ops=ops),
                   "PERSONAE_DEFAULT_PROVIDER": "upstream",
                   "PERSONAE_PROVIDERS": json.dumps({"upstream": provider}),
                   "PERSONAE_ANONYMOUS_LOOPBACK": "false"}
            servers[name] = start_server(name, "personae.api.app:create_app", env)
        yield servers, key
    finally:
        for server in servers.values():
            stop_server(server)


def request_body(model: str, stream: bool) -> bytes:
    body = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    return json.dumps({**body, "stream": True} if stream else body).encode()


def targets(upstream: str, servers: dict[str, Server], key: str,
            stream: bool) -> tuple[Target, ...]:
    """The same messages and ``max_tokens`` every way; only ``model`` differs."""
    def body(model: str) -> bytes:
        return request_body(model, stream)

    json_header = {"Content-Type": "application/json"}
    keyed = {**json_header, "Authorization": f"Bearer {key}"}
    return (Target("direct", f"{upstream}/chat/completions", json_header,
                   body("fake-model")),
            *(Target(name, f"{server.base_url}/v1/chat/completions", keyed,
                     body(PERSONA["id"])) for name, server in servers.items()))


def check_same_reply(pair: tuple[Target, ...]) -> None:
    """Every way must answer 200 with the same text, or the comparison means nothing."""
    replies = []
    with httpx.Client(timeout=10) as client:
        for target in pair:
            response = client.post(target.url, content=target.body, headers=target.headers)
            if response.status_code != 200:
                raise RuntimeError(f"{target.name}: {response.status_code} {response.text}")
            replies.append(reply_text(response))
    if len(set(replies)) != 1:
        raise RuntimeError(f"replies differ: {replies!r}")


def reply_text(response: httpx.Response) -> str:
    """The reply's text, from a whole completion or from its streamed chunks."""
    if not response.headers["content-type"].startswith("text/event-stream"):
        return str(response.json()["choices"][0]["message"]["content"])
    chunks = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: {")]
    return "".join(choice["delta"].get("content") or "" for chunk in chunks
                   for choice in chunk["choices"])


# -- concurrency 1: latency ----------------------------------------------------------


def sequential_latencies(pair: tuple[Target, ...], total: int,
                         block: int) -> dict[str, list[float]]:
    """``total`` requests each, in alternating blocks (order rotates) to share drift."""
    found: dict[str, list[float]] = {t.name: [] for t in pair}
    with httpx.Client(timeout=10) as client:
        for target in pair:  # warm-up: connections, caches, provider client
            for _ in range(20):
                _timed(client, target)
        by_name = {t.name: t for t in pair}
        for round_ in range(total // block):
            for name in rotated(list(by_name), round_):
                found[name].extend(_timed(client, by_name[name]) for _ in range(block))
    return found


def _timed(client: httpx.Client, target: Target) -> float:
    started = time.perf_counter()
    response = client.post(target.url, content=target.body, headers=target.headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{target.name}: {response.status_code} {response.text[:300]}")
    return elapsed


def report_latency(report: Report, found: dict[str, list[float]]) -> None:
    stats = {name: (median(values), percentile(values, 99)) for name, values in found.items()}
    for name, (p50, p99) in stats.items():
        report.value(f"c1_{name}_requests", len(found[name]))
        report.value(f"c1_{name}_median_ms", p50)
        report.value(f"c1_{name}_p99_ms", p99)
    added_median = stats["personae"][0] - stats["direct"][0]
    added_p99 = stats["personae"][1] - stats["direct"][1]
    report.value("c1_added_median_ms", added_median)
    report.value("c1_added_p99_ms", added_p99)
    report.check("added latency median <= 1 ms (concurrency 1)",
                 added_median <= TARGET_ADDED_MEDIAN_MS, f"{added_median:.3f} ms")
    report.check("added latency p99 <= 3 ms (concurrency 1)",
                 added_p99 <= TARGET_ADDED_P99_MS, f"{added_p99:.3f} ms")


# -- concurrency 100: throughput -----------------------------------------------------


def run_post_load(target: Target, concurrency: int, seconds: float) -> LoadResult:
    """``wrk`` with a POST script if installed, else processes of httpx clients."""
    if shutil.which("wrk"):
        return _wrk_post(target, concurrency, seconds)
    return _python_post(target, concurrency, seconds)


def _wrk_post(target: Target, concurrency: int, seconds: float) -> LoadResult:
    headers = "".join(f'wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n'
                      for k, v in target.headers.items())
    script = (f'wrk.method = "POST"\nwrk.body = {json.dumps(target.body.decode())}\n'
              f"{headers}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        command = [*taskset_prefix(CLIENT_CPU), "wrk", "-t2", f"-c{concurrency}",
                   f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", file.name,
                   target.url]
        done = subprocess.run(command, capture_output=True, text=True, check=True,
                              timeout=seconds + 60)
    finally:
        os.unlink(file.name)
    return parse_wrk(done.stdout)


def _python_post(target: Target, concurrency: int, seconds: float) -> LoadResult:
    per_process = max(1, concurrency // PY_PROCESSES)
    with ProcessPoolExecutor(PY_PROCESSES) as pool:
        parts = list(pool.map(_py_worker, [target] * PY_PROCESSES,
                              [per_process] * PY_PROCESSES, [seconds] * PY_PROCESSES))
    return LoadResult("python-httpx", sum(p[0] for p in parts), max(p[2] for p in parts),
                      sum(p[1] for p in parts), 0)


def _py_worker(target: Target, connections: int, seconds: float) -> tuple[int, int, float]:
    pin_self(CLIENT_CPU)
    return asyncio.run(_py_clients(target, connections, seconds))


async def _py_clients(target: Target, connections: int,
                      seconds: float) -> tuple[int, int, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    counts = [0, 0]  # done, not 2xx (errors included)
    start = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def loop() -> None:
            while time.perf_counter() - start < seconds:
                try:
                    response = await client.post(target.url, content=target.body,
                                                 headers=target.headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                counts[0] += 1
                counts[1] += not ok

        await asyncio.gather(*(loop() for _ in range(connections)))
    return counts[0], counts[1], time.perf_counter() - start


@dataclass
class Throughput:
    """Runs at concurrency 100 per target, and each Personae server's CPU per request."""

    runs: dict[str, list[LoadResult]]
    cpu_us_per_req: dict[str, list[float]]


def throughput(pair: tuple[Target, ...], pids: dict[str, int], rounds: int,
               seconds: float) -> Throughput:
    """Alternating runs at concurrency 100 (the order rotates every round); each
    Personae server's CPU time per request is printed."""
    found = Throughput({t.name: [] for t in pair}, {name: [] for name in pids})
    for target in pair:
        run_post_load(target, HIGH_CONCURRENCY, 1)  # warm-up
    by_name = {t.name: t for t in pair}
    for round_ in range(rounds):
        for name in rotated(list(by_name), round_):
            cpu = process_cpu_seconds(pids[name]) if name in pids else 0.0
            result = run_post_load(by_name[name], HIGH_CONCURRENCY, seconds)
            found.runs[name].append(result)
            Report.value(f"c100_{name}_run{round_ + 1}_rps", result.rps, 1)
            if name in pids and result.requests:
                used = (process_cpu_seconds(pids[name]) - cpu) / result.requests * 1e6
                found.cpu_us_per_req[name].append(used)
                Report.value(f"c100_{name}_server_cpu_us_per_req", used, 1)
    return found


def report_throughput(report: Report, found: dict[str, list[LoadResult]],
                      ceiling: LoadResult, latency: float) -> None:
    report.value("c100_load_tool", ceiling.tool)
    report.value("c100_client_ceiling_rps", ceiling.rps, 1)
    if latency > 0:
        report.value("c100_latency_bound_rps", HIGH_CONCURRENCY / latency, 1)
    rps = {name: median([r.rps for r in runs]) for name, runs in found.items()}
    for name, value in rps.items():
        report.value(f"c100_{name}_rps", value, 1)
    ratio = rps["personae"] / rps["direct"] if rps["direct"] else 0.0
    report.value("c100_ratio_personae_vs_direct", ratio)
    bad = sum(r.non_2xx + r.errors for runs in found.values() for r in runs)
    report.value("c100_non_2xx_or_errors", bad)
    report.check("throughput >= 90% of direct (concurrency 100)",
                 ratio >= TARGET_THROUGHPUT_RATIO and bad == 0,
                 f"ratio {ratio:.3f}, {bad} failed requests")
    report.check("load generator not the bottleneck (ceiling >= 1.2x direct)",
                 ceiling.rps >= CEILING_MARGIN * rps["direct"],
                 f"ceiling {ceiling.rps:.0f} rps vs direct {rps['direct']:.0f} rps")


def client_ceiling(seconds: float, stream: bool) -> LoadResult:
    """The load generator's rate against a zero-latency upstream (a lower bound)."""
    with fake_upstream(0.0) as base:
        target = Target("ceiling", f"{base}/chat/completions",
                        {"Content-Type": "application/json"},
                        request_body("fake-model", stream))
        run_post_load(target, HIGH_CONCURRENCY, 1)
        return run_post_load(target, HIGH_CONCURRENCY, seconds)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY,
                        help=f"upstream latency in seconds (default {DEFAULT_LATENCY})")
    parser.add_argument("--stream", action="store_true",
                        help="streamed requests (SSE) both ways instead of whole replies")


def main() -> int:
    args = parse_args("Latency and throughput Personae adds in front of a provider.",
                      _options)
    latency = args.latency
    total, block = (100, 25) if args.quick else (300, 50)
    rounds, seconds = (1, 3.0) if args.quick else (2, 10.0)
    report = Report()
    report.value("upstream_latency_ms", latency * 1000, 1)
    report.value("max_tokens", MAX_TOKENS)
    report.value("stream", str(args.stream).lower())
    ceiling = client_ceiling(seconds, args.stream)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp, \
            fake_upstream(latency) as upstream, \
            personae_servers(Path(tmp), upstream) as (servers, key):
        every = targets(upstream, servers, key, args.stream)
        check_same_reply(every)
        check_ops_modes(report, servers[OPS_ON], servers[OPS_OFF],
                        f"/v1/personas/{PERSONA['id']}", {"Authorization": f"Bearer {key}"})
        pin_self(CLIENT_CPU)
        latencies = sequential_latencies(every, total, block)
        report_latency(report, latencies)
        found = throughput(every, {n: s.process.pid for n, s in servers.items()}, rounds,
                           seconds)
        report_throughput(report, found.runs, ceiling, latency)
        report_ops_cost(report, latencies[OPS_ON], latencies[OPS_OFF],
                        *(median(found.cpu_us_per_req[n]) for n in (OPS_ON, OPS_OFF)))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
