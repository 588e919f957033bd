"""What a suite run found: per assertion, per repetition, per case, per suite."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from personae.quality.stats import wilson_interval

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Target:
    """Which persona version and model one side of a run uses (``None``: the current
    version; the persona's own provider and model)."""

    persona_id: str
    version: int | None = None
    provider: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        version = f"v{self.version}" if self.version is not None else "current"
        model = self.model or self.provider or "persona model"
        return f"{self.persona_id} {version} / {model}"


@dataclass(frozen=True, slots=True)
class AssertionResult:
    kind: str
    turn: int  # which reply (0-based); -1 for the session greeting
    passed: bool | None  # None: skipped
    detail: str


@dataclass(slots=True)
class RunResult:
    """One repetition of a case: its replies and every check on them."""

    replies: list[str] = field(default_factory=list)
    checks: list[AssertionResult] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None or any(c.passed is False for c in self.checks):
            return "failed"
        return "passed" if any(c.passed for c in self.checks) else "skipped"

    @property
    def failures(self) -> list[AssertionResult]:
        return [c for c in self.checks if c.passed is False]


@dataclass(slots=True)
class CaseResult:
    name: str
    threshold: float
    runs: list[RunResult] = field(default_factory=list)

    @property
    def passed_runs(self) -> int:
        return sum(run.status == "passed" for run in self.runs)

    @property
    def counted_runs(self) -> int:
        """Repetitions that passed or failed (skipped-only ones count neither way)."""
        return sum(run.status != "skipped" for run in self.runs)

    @property
    def pass_rate(self) -> float | None:
        return self.passed_runs / self.counted_runs if self.counted_runs else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.passed_runs, self.counted_runs)

    @property
    def status(self) -> Status:
        rate = self.pass_rate
        if rate is None:
            return "skipped"
        return "passed" if rate >= self.threshold else "failed"

    @property
    def skipped_checks(self) -> list[AssertionResult]:
        return [c for run in self.runs for c in run.checks if c.passed is None]


@dataclass(slots=True)
class SuiteResult:
    suite: str
    target: Target
    version: int
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no case fell below its threshold (skipped cases do not fail)."""
        return all(case.status != "failed" for case in self.cases)

    def case(self, name: str) -> CaseResult | None:
        return next((c for c in self.cases if c.name == name), None)
