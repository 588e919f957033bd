"""What ``/health`` reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from personae.api.schemas.common import Public


class HealthPublic(Public):
    status: Literal["ok"]
    version: str = Field(description="the personae package version")
    personas: int = Field(description="how many personas are stored")


class ReadyPublic(Public):
    status: Literal["ready"]
    database: dict[str, Any] = Field(description="latency_ms, revision, head, migrated")


class HealthDetailedPublic(Public):
    status: Literal["ok", "degraded", "down"] = Field(
        description="down: the database is unreachable (then 503); degraded: see problems")
    version: str = Field(description="the personae package version")
    problems: list[str] = Field(description="why the status is not ok, one line per cause")
    database: dict[str, Any] = Field(description="ok, latency_ms, revision, head, migrated "
                                     "(or error)")
    redis: dict[str, Any] = Field(description="the rate-limit storage: configured, ok, "
                                  "latency_ms (or error)")
    queue: dict[str, Any] = Field(description="the job queue: its Redis when it has one, "
                                  "depth (jobs queued), jobs per kind and state, "
                                  "active_sessions")
    providers: dict[str, Any] = Field(description="per provider (speech ones as group:name): "
                                      "breaker state, last_error, last_failure_at, "
                                      "last_success_at, retry_after_seconds")
    embedded_models: list[dict[str, Any]] = Field(
        description="embedded model providers built here: provider, model, loaded")
    voice_models: list[dict[str, Any]] = Field(
        description="local speech models built here: group, name, kind")
    disk: dict[str, Any] = Field(description="per directory (data_dir, audio): path, "
                                 "free_bytes, total_bytes, free_fraction, ok")
    process: dict[str, Any] = Field(description="pid, rss_bytes (resident memory)")
