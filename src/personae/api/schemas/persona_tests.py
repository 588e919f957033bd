"""Persona test run bodies and responses: a run, its progress, and its JSON report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from personae.api.schemas.common import Body, OffsetPage, Public, Timestamp
from personae.quality.records import RunStatus
from personae.quality.suite import MAX_SUITE_BYTES


class TestRunCreate(Body):
    """The suite (a JSON object, or YAML text) and how to run it."""

    __test__ = False

    # A dict here, validated as a suite by the service: its errors are 422s naming the
    # path under ``suite`` (``suite.cases[0].turns``), like the CLI's.
    suite: dict[str, Any] | None = Field(
        default=None, description="the suite: name, cases (turns, expect), threshold, repeat")
    suite_yaml: str | None = Field(default=None, max_length=MAX_SUITE_BYTES,
                                   description="the suite as YAML text, instead of suite")
    repeat: int | None = Field(default=None, ge=1, le=50, strict=True,
                               description="repetitions per case (overrides the suite)")
    model: str | None = Field(default=None, max_length=200,
                              description="PROVIDER:MODEL, a provider, or a model name "
                                          "(default: the persona's)")

    @model_validator(mode="after")
    def _one_suite(self) -> TestRunCreate:
        if (self.suite is None) == (self.suite_yaml is None):
            raise ValueError("give exactly one of suite or suite_yaml")
        return self


class TestRunCounts(Public):
    done: int = Field(description="repetitions finished")
    total: int = Field(description="repetitions the run makes")


class TestRunProgressPublic(Public):
    id: str
    status: RunStatus
    done: int
    total: int
    error: str | None


class TestRunSummary(Public):
    cases: int
    passed: int
    failed: int
    skipped: int
    pass_rate: float | None = Field(description="passed / (passed + failed) cases; null: "
                                                "every case skipped")


class TestRunPublic(Public):
    __test__ = False

    id: str
    owner_id: str
    persona_id: str
    persona_version: int = Field(description="the version pinned when the run started")
    suite: str = Field(description="the suite's name")
    repeat: int | None
    provider: str | None
    model: str | None
    status: RunStatus
    progress: TestRunCounts
    passed: bool | None = Field(description="every case at its threshold (once completed)")
    summary: TestRunSummary | None = Field(description="cases passed (once completed)")
    error: str | None
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None


class TestRunsPublic(OffsetPage[TestRunPublic]):
    pass


class CheckPublic(Public):
    kind: str
    turn: int = Field(description="which reply (0-based); -1 for the session greeting")
    passed: bool | None = Field(description="null: skipped")
    detail: str


class RepetitionPublic(Public):
    status: Literal["passed", "failed", "skipped"]
    error: str | None
    replies: list[str]
    checks: list[CheckPublic]


class CaseReportPublic(Public):
    name: str
    status: Literal["passed", "failed", "skipped"]
    threshold: float
    passed: int
    counted: int
    runs: int
    pass_rate: float | None
    interval: list[float] = Field(description="Wilson 95% interval of the pass rate")
    repetitions: list[RepetitionPublic]


class SidePublic(Public):
    suite: str
    passed: bool
    persona: str
    version: int
    provider: str | None
    model: str | None
    cases: list[CaseReportPublic]


class TestReportPublic(Public):
    """The JSON report, as ``personae test --json`` writes it."""

    __test__ = False

    schema_: str = Field(alias="schema", description="personae.test-report/1")
    passed: bool
    sides: list[SidePublic]


class TestSuitePublic(Public):
    """The suite shipped for a persona (sample personas have one), or none."""

    __test__ = False

    persona_id: str
    available: bool = Field(description="false: no suite ships for this persona")
    name: str | None
    cases: int
    suite_yaml: str | None = Field(description="run it with {\"suite_yaml\": ...}")


class ComparedSide(Public):
    run_id: str
    suite: str
    passed: bool
    persona: str
    version: int
    provider: str | None
    model: str | None


class ComparedCase(Public):
    name: str
    status: Literal["passed", "failed", "skipped"]
    pass_rate: float | None
    passed: int
    counted: int
    other_status: Literal["passed", "failed", "skipped"] | None = Field(
        description="null: the other run has no case of this name")
    other_pass_rate: float | None
    other_passed: int | None
    other_counted: int | None
    flip: Literal["pass→fail", "fail→pass", ""]


class TestComparisonPublic(Public):
    """Two completed runs case by case: from ``other_id`` (before) to ``run_id``."""

    __test__ = False

    run_id: str
    other_id: str
    sides: list[ComparedSide]
    cases: list[ComparedCase]
    flips: dict[str, Literal["pass→fail", "fail→pass"]]
