"""``GET /v1/metrics/summary``: the headline figures of the process's counters, for
admins; the same numbers ``/metrics`` exposes, summed over their labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from personae.conversations.observe import TurnReport
from tests.support.api import Api


def _turn(persona: str, status: str, first_token_ms: float | None,
          error: str | None = None) -> TurnReport:
    return TurnReport("s", persona, 1, "model", "m", status, first_token_ms, 500.0, 7, 3,
                      error)


def _exposed_total(text: str, family: str) -> float:
    return sum(sample.value for found in text_string_to_metric_families(text)
               if found.name == family for sample in found.samples
               if sample.name.endswith("_total"))


async def test_it_sums_the_counters_per_persona(api: Api) -> None:
    metrics = api.runtime.metrics
    metrics.turn_finished(_turn("a/one", "complete", 100.0))
    metrics.turn_finished(_turn("a/one", "interrupted", 300.0))
    metrics.turn_finished(_turn("b/two", "failed", None, "provider_timeout"))
    metrics.rate_limited("chat", "requests")
    metrics.rate_limited("chat", "tokens")
    metrics.rate_limited("writes", "requests")
    response = await api.client.get("/v1/metrics/summary", headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["turns"] == {"complete": 1, "interrupted": 1, "failed": 1}
    assert body["turn_errors"] == 1 and body["tokens"] == {"prompt": 21, "completion": 9}
    assert body["rate_limited"] == {"chat": 2, "writes": 1}
    assert body["rate_limited_total"] == 3
    one, two = body["personas"]
    assert (one["persona"], one["turns"], one["complete"], one["interrupted"]) == (
        "a/one", 2, 1, 1)
    assert one["first_token_mean_ms"] == 200.0
    assert (two["persona"], two["failed"], two["errors"]) == ("b/two", 1, 1)
    assert two["first_token_mean_ms"] is None


async def test_requests_match_what_metrics_exposes(api: Api) -> None:
    for _ in range(3):
        await api.client.get("/v1/personas", headers=api.as_("alice"))
    await api.client.get("/v1/personas/nobody/none", headers=api.as_("alice"))
    exposed = (await api.client.get("/metrics")).text
    body = (await api.client.get("/v1/metrics/summary", headers=api.as_("admin"))).json()
    # the summary's own request is counted once it is answered, after it was read
    assert body["requests"] == _exposed_total(exposed, "personae_http_requests") + 1
    assert body["requests_by_status"]["4xx"] >= 1
    assert sum(body["requests_by_status"].values()) == body["requests"]


async def test_members_and_visitors_are_refused(api: Api) -> None:
    member = await api.client.get("/v1/metrics/summary", headers=api.as_("alice"))
    assert member.status_code == 403
    assert member.json()["error"]["code"] == "forbidden"
    assert (await api.client.get("/v1/metrics/summary")).status_code == 401
