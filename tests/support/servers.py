"""Start real ``personae`` API servers as subprocesses for multi-process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(database_url: str, data_dir: Path, *, log_level: str = "warning",
               log: Path | None = None, **env: str) -> Iterator[str]:
    """Run ``uvicorn personae.api.app:create_app`` on a free loopback port; yield its URL.
    ``log`` receives the server's output (complete once the block has ended); at
    ``log_level="info"`` that includes uvicorn's access log."""
    port = free_port()
    environment = {**os.environ, "PERSONAE_DATABASE_URL": database_url,
                   "PERSONAE_DATA_DIR": str(data_dir), "PERSONAE_HOST": "127.0.0.1",
                   "PERSONAE_PORT": str(port), **env}
    out = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "personae.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level],
        env=environment, stdout=out or subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if out is not None:
            out.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become healthy in {timeout}s")


@dataclass
class ServeProcess:
    """``personae serve`` as a child process that a test can kill -9, send SIGTERM to,
    and start again on the same port (so under the same default node name)."""

    database_url: str
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / f"serve-{self.port}.log"

    def launch(self) -> None:
        """Start the process without waiting for it (see :meth:`wait_healthy`)."""
        environment = {**os.environ, "PERSONAE_DATABASE_URL": self.database_url,
                       "PERSONAE_DATA_DIR": str(self.data_dir), "PERSONAE_LOG_LEVEL": "warning",
                       **self.env}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "personae", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)], env=environment, stdout=out,
                stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 30) -> None:
        assert self.process is not None
        try:
            _wait_healthy(self.url, self.process, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log.read_text(errors='replace')}") from None

    def start(self) -> None:
        self.launch()
        self.wait_healthy()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine or container dies."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it; see :meth:`wait`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def serve_processes(*servers: ServeProcess) -> Iterator[tuple[ServeProcess, ...]]:
    """Start the servers side by side, and make sure none outlives the block."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_healthy()
        yield servers
    finally:
        for server in servers:
            server.stop()
