"""Helpers shared by the benchmark scripts: ports, servers, CPU pinning, reporting.

Every benchmark talks only to 127.0.0.1, starts its own servers as subprocesses and
stops them on exit. Figures are reported as ratios against a baseline measured in the
same run, because absolute numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
SERVER_CPU = 0
CLIENT_CPU = 1


def parse_args(description: str,
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run (smaller, fewer rounds)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


# -- CPU pinning -------------------------------------------------------------

def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def taskset_prefix(cpu: int) -> list[str]:
    """Command prefix pinning a child to ``cpu`` (empty when pinning is not possible)."""
    return ["taskset", "-c", str(cpu)] if can_pin() else []


def pin_self(cpu: int) -> None:
    """Pin this process (the load generator / client) to ``cpu`` when possible."""
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


# -- servers -----------------------------------------------------------------

def uvicorn_flags() -> list[str]:
    """The same server settings for every app: uvloop + httptools when installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return ["--workers", "1", "--no-access-log", "--log-level", "warning",
            "--loop", loop, "--http", http]


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://{HOST}:{self.port}"

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_server(name: str, app: str, env: dict[str, str], *, app_dir: Path | None = None,
                 cpu: int | None = SERVER_CPU, timeout: float = 30.0) -> Server:
    """Start ``uvicorn --factory APP`` on a free port and wait until ``/health`` answers."""
    port = free_port()
    command = [*(taskset_prefix(cpu) if cpu is not None else []), sys.executable, "-m",
               "uvicorn", app, "--factory", "--host", HOST, "--port", str(port),
               *uvicorn_flags()]
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, process, port, log_path)
    try:
        wait_for_health(server, timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_for_health(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /health in {timeout:.0f}s:\n"
                       f"{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    with contextlib.suppress(OSError):
        server.log_path.unlink()


@contextlib.contextmanager
def running_server(name: str, app: str, env: dict[str, str], *,
                   app_dir: Path | None = None) -> Iterator[Server]:
    server = start_server(name, app, env, app_dir=app_dir)
    try:
        yield server
    finally:
        stop_server(server)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# Budgets no load generator reaches: the limiter counts every request (its cost is part
# of what is measured) but refuses none.
BENCH_RATE_LIMITS = json.dumps({role: dict.fromkeys(
    ("chat", "audio", "jobs", "writes", "other"), "1000000000/minute")
    for role in ("member", "admin", "anonymous")})


# The same server without rate limits and metrics: the baseline of what they cost.
OPS_OFF_ENV = {"PERSONAE_RATE_LIMITS_ENABLED": "false", "PERSONAE_METRICS_ENABLED": "false"}
OPS_ADDED_TARGET_MS = 0.2


def personae_env(data_dir: Path, database_url: str, *, ops: bool = True) -> dict[str, str]:
    """Environment for a real ``personae.api.app:create_app`` server on a given store;
    ``ops=False`` turns rate limits and metrics off."""
    env = {"PERSONAE_DATA_DIR": str(data_dir), "PERSONAE_DATABASE_URL": database_url,
           "PERSONAE_LOG_LEVEL": "warning", "PERSONAE_HOST": HOST,
           "PERSONAE_RATE_LIMITS": BENCH_RATE_LIMITS}
    return env if ops else {**env, **OPS_OFF_ENV}


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{(directory / 'personae.db').as_posix()}"


# -- store preparation -------------------------------------------------------

async def _admin_key(database_url: str, user: str) -> str:
    from personae.auth.principal import Role
    from personae.auth.store import UserStore
    from personae.db.engine import make_engine, migrate

    engine = make_engine(database_url)
    try:
        await migrate(engine)
        users = UserStore(engine)
        await users.create_user(user, Role.admin)
        token, _ = await users.create_key(user, "bench")
        return token
    finally:
        await engine.dispose()


def admin_key(database_url: str, user: str = "bench-admin") -> str:
    """Create an admin user and return a new API key for it (plaintext)."""
    return asyncio.run(_admin_key(database_url, user))


# -- reporting ---------------------------------------------------------------

class Report:
    """Prints ``name: value`` lines, then one PASS/FAIL line per target."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, bool, str]] = []

    @staticmethod
    def value(name: str, value: float | int | str, digits: int = 3) -> None:
        if isinstance(value, float):
            value = f"{value:.{digits}f}"
        print(f"{name}: {value}", flush=True)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))

    def finish(self) -> int:
        for name, ok, detail in self.checks:
            print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        return 0 if all(ok for _, ok, _ in self.checks) else 1


# -- what rate limits and metrics cost (ops on against ops off) --------------------------

def rotated(items: Sequence[str], index: int) -> list[str]:
    """``items`` starting at ``index`` (mod its length): the order of round ``index``, so
    drift and warm caches hit every server alike."""
    shift = index % len(items)
    return [*items[shift:], *items[:shift]]


def check_ops_modes(report: Report, on: Server, off: Server, path: str,
                    headers: dict[str, str]) -> None:
    """The two servers must really differ as claimed: the ops-on one counts the request
    (``RateLimit-Limit``) and serves ``/metrics``; the ops-off one does neither."""
    with httpx.Client(headers=headers, timeout=10) as client:
        seen = {server.name: ("ratelimit-limit" in client.get(server.base_url + path).headers,
                              client.get(server.base_url + "/metrics").status_code)
                for server in (on, off)}
    ok = seen[on.name] == (True, 200) and seen[off.name] == (False, 404)
    report.check("ops_modes", ok, "; ".join(
        f"{name}: RateLimit-Limit {'sent' if limited else 'absent'}, /metrics {status}"
        for name, (limited, status) in seen.items()))


def report_ops_cost(report: Report, on_ms: Sequence[float], off_ms: Sequence[float],
                    cpu_on_us: float, cpu_off_us: float) -> float:
    """Sequential latency and server CPU per request with rate limits and metrics on
    against off; checks the added median. Returns it (ms)."""
    for mode, values in (("on", on_ms), ("off", off_ms)):
        report.value(f"ops_{mode}_requests", len(values))
        report.value(f"ops_{mode}_median_ms", median(values))
        report.value(f"ops_{mode}_p99_ms", percentile(values, 99))
    added = median(on_ms) - median(off_ms)
    report.value("ops_added_median_ms", added)
    report.value("ops_added_p99_ms", percentile(on_ms, 99) - percentile(off_ms, 99))
    report.value("ops_on_server_cpu_us_per_req", cpu_on_us, 1)
    report.value("ops_off_server_cpu_us_per_req", cpu_off_us, 1)
    report.value("ops_added_cpu_us_per_req", cpu_on_us - cpu_off_us, 1)
    report.value("ops_cpu_ratio_on_vs_off", cpu_on_us / cpu_off_us if cpu_off_us else math.nan)
    report.check("ops_added_median_ms", added < OPS_ADDED_TARGET_MS,
                 f"{added:.3f} ms (target < {OPS_ADDED_TARGET_MS} ms: rate limits and "
                 f"metrics on against off)")
    return added
