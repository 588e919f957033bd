"""The metrics summary as ``GET /v1/metrics/summary`` returns it."""

from __future__ import annotations

from pydantic import Field

from personae.api.schemas.common import Public


class PersonaFiguresPublic(Public):
    persona: str = Field(description="the persona's id")
    turns: int = Field(description="turns finished, whatever their status")
    complete: int
    interrupted: int
    failed: int
    errors: int = Field(description="turns that ended with an error")
    prompt_tokens: int
    completion_tokens: int
    first_token_mean_ms: float | None = Field(description="mean time to the first reply "
                                                          "token; null before any")


class MetricsSummaryPublic(Public):
    """Counted since the server started, from the counters ``/metrics`` exposes."""

    requests: int = Field(description="HTTP requests answered")
    requests_by_status: dict[str, int] = Field(description="per status class: 2xx, 4xx...")
    turns: dict[str, int] = Field(description="complete, interrupted, failed")
    turn_errors: int
    tokens: dict[str, int] = Field(description="prompt, completion")
    rate_limited: dict[str, int] = Field(description="refusals per route class")
    rate_limited_total: int
    jobs_failed: dict[str, int] = Field(description="per job kind (panel, test)")
    active_sessions: int = Field(description="open conversation sessions, all users")
    open_sockets: dict[str, int] = Field(description="per kind (session, voice)")
    personas: list[PersonaFiguresPublic] = Field(description="the busiest personas first "
                                                             "(at most 100)")
