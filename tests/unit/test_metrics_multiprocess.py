"""Multiprocess metrics: processes writing to one PROMETHEUS_MULTIPROC_DIR, one scrape
seeing them all (live gauges only of the processes still running)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from personae.ops.metrics import MULTIPROC_ENV, Metrics, prepare_multiprocess

WORKER = """
import sys
from personae.ops.metrics import DatabaseCounts, Metrics
metrics = Metrics(True)
assert metrics.multiprocess_dir, metrics
metrics.set_counts(DatabaseCounts(int(sys.argv[2]), {("panel", "queued"): 1}))
metrics.observe_request("GET", "/v1/personas/{persona_id}", 200, 0.004)
metrics.socket_opened("session")
metrics.cache_lookup("personas", True)
if sys.argv[1] == "stops":
    metrics.close()
"""
SCRAPE = """
from personae.ops.metrics import Metrics
print(Metrics(True).render()[0].decode())
"""


def _run(script: str, directory: Path, *args: str) -> str:
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout


def _value(text: str, name: str, **labels: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def test_one_scrape_sees_every_process(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    _run(WORKER, directory, "stops", "4")  # a worker that exited cleanly
    _run(WORKER, directory, "runs", "5")  # one still counted as running (no close)
    text = _run(SCRAPE, directory)
    assert _value(text, "personae_http_requests_total", route="/v1/personas/{persona_id}",
                  status="200") == 2
    assert _value(text, "personae_http_request_duration_seconds_count") == 2
    assert _value(text, "personae_cache_lookups_total", cache="personas", result="hit") == 2
    # Live gauges sum the processes still alive: the one that closed is dropped.
    assert _value(text, "personae_open_sockets", kind="session") == 1
    # Database gauges are the same in every process: the latest value is shown once.
    assert _value(text, "personae_active_sessions") == 5
    assert _value(text, "personae_jobs", kind="panel", state="queued") == 1


def test_prepare_empties_the_directory_and_exports_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "metrics-8000"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"left by an earlier run")
    monkeypatch.setenv(MULTIPROC_ENV, "placeholder")  # restored after the test
    assert prepare_multiprocess(directory) == directory
    assert list(directory.iterdir()) == []
    assert os.environ[MULTIPROC_ENV] == str(directory)


def test_without_the_directory_each_instance_counts_alone() -> None:
    first, second = Metrics(True), Metrics(True)
    first.observe_request("GET", "/health", 200, 0.001)
    assert first.multiprocess_dir is None
    assert b'route="/health"' in first.render()[0]
    assert b'route="/health"' not in second.render()[0]
    disabled = Metrics(False)
    disabled.observe_request("GET", "/health", 200, 0.001)
    assert b'route="/health"' not in disabled.render()[0]
