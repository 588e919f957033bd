"""A persona's figures per version and UTC day (``GET /v1/personas/{id}/metrics``)."""

from __future__ import annotations

from pydantic import Field

from personae.api.schemas.common import Public


class LatencyPublic(Public):
    mean: float | None = Field(description="ms; null when nothing was observed")
    p50: float | None = Field(description="ms, estimated from fixed buckets")
    p95: float | None = Field(description="ms, estimated from fixed buckets")


class RatingCountsPublic(Public):
    up: int
    down: int


class FiguresPublic(Public):
    turns: int = Field(description="turns answered or attempted")
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: LatencyPublic
    response_ms: LatencyPublic
    errors: int = Field(description="turns that failed")
    interruptions: int = Field(description="turns cut short (cancelled, barge-in, shutdown)")
    ratings: RatingCountsPublic = Field(description="ratings given that day to this "
                                                    "version's replies")


class DayFiguresPublic(FiguresPublic):
    day: str = Field(description="a UTC day, YYYY-MM-DD")


class VersionMetricsPublic(Public):
    version: int
    days: list[DayFiguresPublic] = Field(description="days with figures, oldest first")
    totals: FiguresPublic = Field(description="all those days together")


class PersonaMetricsPublic(Public):
    persona_id: str
    days: int = Field(description="the window asked for, ending today (UTC)")
    since: str = Field(description="the window's first UTC day")
    versions: list[VersionMetricsPublic] = Field(description="versions with figures, "
                                                             "lowest first")
