"""What the app's start-up does for the process it runs in."""

from __future__ import annotations

import gc

from personae.api.app import GC_YOUNG_THRESHOLD
from tests.support.api import Api


async def test_the_start_up_heap_is_kept_out_of_the_collectors_way(api: Api) -> None:
    """Full collections then skip what start-up built, which they would otherwise walk
    every time (~90 ms pauses under load, see bench/gateway_overhead.py)."""
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD
    response = await api.client.get("/health")  # and the app works as before
    assert response.status_code == 200
