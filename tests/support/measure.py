"""Measuring what a bounded operation cost, for the bound tests."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable


def measured(run: Callable[[], object]) -> tuple[float, int]:
    """CPU seconds (this thread's, so a loaded machine does not count) and peak traced
    bytes ``run`` took."""
    tracemalloc.start()
    started = time.thread_time()
    try:
        run()
        return time.thread_time() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
