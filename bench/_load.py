"""HTTP load generation for the throughput benchmarks: ``wrk`` if present, else Python.

The Python fallback runs several processes of keep-alive ``httpx`` clients; it is much
slower than ``wrk`` and may saturate before a fast server does, which compresses ratios
towards 1.0. Both are pinned to the client CPU when the machine has two or more.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import re
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import httpx

from _common import CLIENT_CPU, pin_self, taskset_prefix

PY_PROCESSES = 4


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def run_load(url: str, headers: dict[str, str], concurrency: int,
             seconds: float) -> LoadResult:
    if shutil.which("wrk"):
        return run_wrk(url, headers, concurrency, seconds)
    return run_python(url, headers, concurrency, seconds)


def run_wrk(url: str, headers: dict[str, str], concurrency: int,
            seconds: float) -> LoadResult:
    duration = max(1, math.ceil(seconds))  # wrk takes whole seconds
    command = [*taskset_prefix(CLIENT_CPU), "wrk", "-t2", f"-c{concurrency}",
               f"-d{duration}s", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                          timeout=duration + 30)
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> LoadResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                        r"timeout (\d+)", output)
    errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    return LoadResult("wrk", int(total.group(1)), float(total.group(2)) * scale,
                      int(non_2xx.group(1)) if non_2xx else 0, errors)


def run_python(url: str, headers: dict[str, str], concurrency: int,
               seconds: float) -> LoadResult:
    per_process = max(1, concurrency // PY_PROCESSES)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(PY_PROCESSES, mp_context=context) as pool:
        parts = list(pool.map(_py_worker, [url] * PY_PROCESSES, [headers] * PY_PROCESSES,
                              [per_process] * PY_PROCESSES, [seconds] * PY_PROCESSES))
    elapsed = max(p[3] for p in parts)
    return LoadResult("python-httpx", sum(p[0] for p in parts), elapsed,
                      sum(p[1] for p in parts), sum(p[2] for p in parts))


def _py_worker(url: str, headers: dict[str, str], connections: int,
               seconds: float) -> tuple[int, int, int, float]:
    pin_self(CLIENT_CPU)
    return asyncio.run(_py_clients(url, headers, connections, seconds))


async def _py_clients(url: str, headers: dict[str, str], connections: int,
                      seconds: float) -> tuple[int, int, int, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    counts = [0, 0, 0]  # ok, non-2xx, errors
    start = time.perf_counter()
    deadline = start + seconds
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=5.0) as client:

        async def loop() -> None:
            while time.perf_counter() < deadline:
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    counts[2] += 1
                    continue
                counts[0 if 200 <= response.status_code < 300 else 1] += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
    return counts[0] + counts[1], counts[1], counts[2], time.perf_counter() - start
