"""``GET /v1/personas/{id}/metrics``: real turns on the scripted model, read back per
version and day, for the persona's owner and admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api, serve_with_persona
from tests.support.writing_samples import scripted_settings

TUTOR = {"id": "tutor", "name": "Tutor", "language": "en", "greetings": ["Hi."]}
ID = "alice/tutor"


@pytest.fixture
async def sapi(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """Alice's public persona on the scripted model (which echoes each message)."""
    async for api in serve_with_persona(scripted_settings(database_url, tmp_path,
                                                          anonymous_loopback=False), TUTOR):
        yield api


async def _turns(api: Api, count: int) -> str:
    opened = await api.client.post("/v1/sessions", json={"persona_id": ID},
                                   headers=api.as_("alice"))
    assert opened.status_code == 201, opened.text
    sid = opened.json()["session"]["id"]
    for number in range(count):
        sent = await api.client.post(f"/v1/sessions/{sid}/messages",
                                     json={"content": f"question {number} four words"},
                                     headers=api.as_("alice"))
        assert sent.status_code == 200, sent.text
    return str(sid)


async def _metrics(api: Api, who: str = "alice", **params: Any) -> Any:
    response = await api.client.get(f"/v1/personas/{ID}/metrics", params=params,
                                    headers=api.as_(who))
    assert response.status_code == 200, response.text
    return response.json()


async def test_figures_per_version_and_day(sapi: Api) -> None:
    await _turns(sapi, 3)
    changed = await sapi.client.patch(f"/v1/personas/{ID}", json={
        "definition": {"description": "now v2"}, "base_version": 1}, headers=sapi.as_("alice"))
    assert changed.status_code == 200, changed.text
    await _turns(sapi, 2)
    body = await _metrics(sapi)
    today = datetime.now(UTC).date().isoformat()
    assert body["persona_id"] == ID and body["days"] == 30
    assert [v["version"] for v in body["versions"]] == [1, 2]
    first, second = body["versions"]
    assert [day["day"] for day in first["days"]] == [today]
    assert first["totals"]["turns"] == 3 and second["totals"]["turns"] == 2
    assert first["days"][0]["turns"] == 3
    for version in (first, second):
        totals = version["totals"]
        assert totals["prompt_tokens"] > 0 and totals["completion_tokens"] > 0
        assert totals["errors"] == 0 and totals["interruptions"] == 0
        assert totals["ratings"] == {"up": 0, "down": 0}
        for metric in ("time_to_first_token_ms", "response_ms"):
            figures = totals[metric]
            assert figures["mean"] is not None and figures["mean"] >= 0
            assert 0 <= figures["p50"] <= figures["p95"]
    only = await _metrics(sapi, version=2)
    assert [v["version"] for v in only["versions"]] == [2]
    assert only["versions"][0]["totals"] == second["totals"]


async def test_percentiles_stay_within_what_was_observed(sapi: Api) -> None:
    await _turns(sapi, 4)
    rows = {row["metric"]: row for row in
            await sapi.runtime.conversations.store.metrics(ID)}
    response = (await _metrics(sapi))["versions"][0]["totals"]["response_ms"]
    low, high = rows["response_ms"]["minimum"], rows["response_ms"]["maximum"]
    assert round(low, 1) <= response["p50"] <= response["p95"] <= round(high, 1)
    buckets = sum(row["count"] for name, row in rows.items()
                  if name.startswith("response_ms_le_"))
    assert buckets == 4  # every turn counted in one latency bucket


async def test_only_owner_and_admins_read_metrics(sapi: Api) -> None:
    await _turns(sapi, 1)
    admin = await _metrics(sapi, "admin")
    assert admin["versions"][0]["totals"]["turns"] == 1
    public = await sapi.client.get(f"/v1/personas/{ID}/metrics", headers=sapi.as_("bob"))
    assert public.status_code == 403, public.text
    assert public.json()["error"]["code"] == "forbidden"
    hidden = await sapi.client.patch(f"/v1/personas/{ID}", json={
        "visibility": "private", "base_version": 1}, headers=sapi.as_("alice"))
    assert hidden.status_code == 200, hidden.text
    private = await sapi.client.get(f"/v1/personas/{ID}/metrics", headers=sapi.as_("bob"))
    missing = await sapi.client.get("/v1/personas/alice/nobody/metrics",
                                    headers=sapi.as_("bob"))
    assert private.status_code == missing.status_code == 404
    assert private.json()["error"]["message"].replace(ID, "<id>") == \
        missing.json()["error"]["message"].replace("alice/nobody", "<id>")
    unknown_version = await sapi.client.get(f"/v1/personas/{ID}/metrics?version=9",
                                            headers=sapi.as_("alice"))
    assert unknown_version.status_code == 404


@pytest.mark.parametrize("days", [0, 367, -1])
async def test_days_are_bounded(sapi: Api, days: int) -> None:
    response = await sapi.client.get(f"/v1/personas/{ID}/metrics?days={days}",
                                     headers=sapi.as_("alice"))
    assert response.status_code == 422
    assert "days" in response.text


async def test_window_edges_and_global_personas(sapi: Api) -> None:
    await _turns(sapi, 1)
    assert (await _metrics(sapi, days=1))["versions"][0]["totals"]["turns"] == 1
    assert (await _metrics(sapi, days=366))["versions"][0]["totals"]["turns"] == 1
    empty = await sapi.client.post("/v1/personas", json={
        "definition": {"id": "quiet", "name": "Quiet"}, "global": True},
        headers=sapi.as_("admin"))
    assert empty.status_code == 201, empty.text
    quiet = await sapi.client.get("/v1/personas/quiet/metrics", headers=sapi.as_("admin"))
    assert quiet.status_code == 200 and quiet.json()["versions"] == []
    member = await sapi.client.get("/v1/personas/quiet/metrics", headers=sapi.as_("alice"))
    assert member.status_code == 403
