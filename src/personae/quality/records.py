"""A stored persona test run, as the store hands it out and the API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
OPEN: tuple[RunStatus, ...] = ("queued", "running")


@dataclass(frozen=True, slots=True)
class TestRun:
    """One stored run: what it tests, how far it got, and what it found."""

    __test__ = False  # not a pytest class, whatever its name

    id: str
    owner_id: str
    persona_id: str
    persona_version: int
    suite: dict[str, Any]
    options: dict[str, Any]
    status: RunStatus
    done: int
    total: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status not in OPEN

    def progress(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "done": self.done, "total": self.total,
                "error": self.error}

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "owner_id": self.owner_id, "persona_id": self.persona_id,
                "persona_version": self.persona_version, "suite": self.suite["name"],
                "repeat": self.options.get("repeat"), "provider": self.options.get("provider"),
                "model": self.options.get("model"), "status": self.status,
                "progress": {"done": self.done, "total": self.total},
                "passed": self.result["passed"] if self.result else None,
                "summary": summary_of(self.result),
                "error": self.error, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def summary_of(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """Cases passed, failed and skipped on the report's primary side, and the share of
    counted (not skipped) cases that passed: the figure a list of runs shows."""
    if not report or not report.get("sides"):
        return None
    statuses = [case["status"] for case in report["sides"][0]["cases"]]
    passed, failed = statuses.count("passed"), statuses.count("failed")
    return {"cases": len(statuses), "passed": passed, "failed": failed,
            "skipped": statuses.count("skipped"),
            "pass_rate": round(passed / (passed + failed), 4) if passed + failed else None}
