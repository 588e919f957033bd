"""Persona test runs for one caller: who may run them, bounds, queueing, results.

A run belongs to the user who started it (admins see every run); anyone else gets
404. Starting one needs read access to the persona: a private persona is tested only
by its owner or an admin, a public one by anyone who can read it. The persona's
current version is pinned when the run is created; the work runs as a queued job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from personae.auth.principal import Principal
from personae.errors import (
    Conflict,
    FieldIssue,
    InvalidInput,
    NotFound,
    QueueUnavailable,
    ValidationFailed,
)
from personae.personas.prepared import PreparedPersonas
from personae.quality.queue import LocalTestQueue, TestRunQueue
from personae.quality.records import RunStatus, TestRun
from personae.quality.report import compare_sides
from personae.quality.shipped import ShippedSuite, shipped_suite
from personae.quality.store import TestRunStore
from personae.quality.suite import Suite, _issue, parse_suite

MAX_CASES = 200
MAX_TURNS = 20
MAX_RUN_REPEAT = 50
MAX_REPETITIONS = 2000
SIDE_KEYS = ("suite", "passed", "persona", "version", "provider", "model")


@dataclass(frozen=True, slots=True)
class TestRunOptions:
    """How to run: repetitions per case (``None``: the suite's), and ``provider:model``
    (``None``: the persona's own)."""

    __test__ = False

    repeat: int | None = None
    model: str | None = None


def parse_run_suite(raw: Suite | Mapping[str, Any] | str) -> Suite:
    """A suite from a JSON object (``suite``) or YAML text (``suite_yaml``); problems
    are a 422 naming each path under that field."""
    if isinstance(raw, Suite):
        return raw
    if isinstance(raw, str):
        try:
            return parse_suite(raw, "suite_yaml")
        except ValidationFailed as exc:
            raise ValidationFailed(_under("suite_yaml", exc.issues)) from None
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(_under("suite", [_issue(e) for e in exc.errors()])) from None


def _under(field: str, issues: list[FieldIssue]) -> list[FieldIssue]:
    return [FieldIssue(f"{field}.{issue.path}" if issue.path else field, issue.message)
            for issue in issues]


def repetitions(suite: Suite, repeat: int | None) -> int:
    """How many repetitions the run makes, within the bounds one run may take."""
    issues = []
    if len(suite.cases) > MAX_CASES:
        issues.append(FieldIssue("suite.cases", f"at most {MAX_CASES} cases in a run"))
    if suite.repeat > MAX_RUN_REPEAT:
        issues.append(FieldIssue("suite.repeat", f"at most {MAX_RUN_REPEAT} in a run"))
    for index, case in enumerate(suite.cases):
        if len(case.turns) > MAX_TURNS:
            issues.append(FieldIssue(f"suite.cases[{index}].turns",
                                     f"at most {MAX_TURNS} turns in a case"))
        if case.repeat is not None and case.repeat > MAX_RUN_REPEAT:
            issues.append(FieldIssue(f"suite.cases[{index}].repeat",
                                     f"at most {MAX_RUN_REPEAT} in a run"))
    total = sum(suite.repeat_for(case, repeat) for case in suite.cases)
    if not issues and total > MAX_REPETITIONS:
        issues.append(FieldIssue("suite", f"{total} repetitions in all; a run makes at "
                                          f"most {MAX_REPETITIONS}"))
    if issues:
        raise ValidationFailed(issues)
    return total


def model_target(spec: str | None, providers: list[str]) -> dict[str, str | None]:
    """``PROVIDER:MODEL``, a configured provider's name alone, or a model name."""
    if spec is None or not spec.strip():
        return {"provider": None, "model": None}
    provider, colon, name = spec.strip().partition(":")
    if not colon:
        return ({"provider": provider, "model": None} if provider in providers
                else {"provider": None, "model": provider})
    if provider and provider not in providers:
        raise InvalidInput(f"model: no provider named '{provider}'; configured: "
                           f"{', '.join(providers)}", {"field": "model"})
    return {"provider": provider or None, "model": name or None}


class TestRunService:
    __test__ = False

    def __init__(self, store: TestRunStore, prepared: PreparedPersonas,
                 provider_names: Callable[[], list[str]], queue: TestRunQueue) -> None:
        self.store = store
        self.prepared = prepared
        self.provider_names = provider_names
        self.queue = queue

    async def resume(self) -> int:
        """Restart in-process runs a restart left open (arq keeps its own queue)."""
        if isinstance(self.queue, LocalTestQueue):
            return await self.queue.resume()
        return 0

    async def start(self, principal: Principal, persona_id: str,
                    suite: Suite | Mapping[str, Any] | str,
                    options: TestRunOptions) -> TestRun:
        """Check, store and queue a run; returns at once, the run ``queued``."""
        persona = await self.prepared.usable(principal, persona_id)  # 404 if unreadable
        parsed = parse_run_suite(suite)
        if options.repeat is not None and not 1 <= options.repeat <= MAX_RUN_REPEAT:
            raise ValidationFailed([FieldIssue("repeat", f"between 1 and {MAX_RUN_REPEAT}")])
        total = repetitions(parsed, options.repeat)
        target = model_target(options.model, self.provider_names())
        run = await self.store.create(
            principal.user_id, persona.persona_id, persona.version,
            parsed.model_dump(mode="json", by_alias=True),
            {"repeat": options.repeat, **target}, total)
        try:
            await self.queue.submit(run.id)
        except QueueUnavailable:  # no run left queued that nothing will ever run
            await self.store.delete(run.id)
            raise
        return run

    async def get(self, principal: Principal, run_id: str) -> TestRun:
        found = await self.store.get(run_id, _owner(principal))
        if found is None:
            raise NotFound(f"test run '{run_id}' not found")
        return found

    async def runs(self, principal: Principal, *, limit: int = 50, offset: int = 0,
                   status: RunStatus | None = None,
                   persona_id: str | None = None) -> tuple[list[TestRun], int]:
        """The caller's runs (an admin's: everyone's), newest first; of one persona if
        ``persona_id`` is given."""
        return await self.store.runs(_owner(principal), limit=limit, offset=offset,
                                     status=status, persona_id=persona_id)

    async def suite_for(self, principal: Principal, persona_id: str) -> ShippedSuite | None:
        """The suite shipped for the persona (sample personas have one); ``None`` when
        there is none. A persona the caller cannot read is 404, as for a run."""
        persona = await self.prepared.usable(principal, persona_id)
        return shipped_suite(persona.persona_id)

    async def compare(self, principal: Principal, run_id: str,
                      other_id: str) -> dict[str, Any]:
        """Two completed runs case by case (pass rates and flips from ``other_id`` to
        ``run_id``): versions or models side by side. 404 or 409 as for results."""
        primary = await self.results(principal, run_id)
        other = await self.results(principal, other_id)
        sides = [primary["sides"][0], other["sides"][0]]
        return {"run_id": run_id, "other_id": other_id,
                "sides": [{"run_id": rid, **{k: side[k] for k in SIDE_KEYS}}
                          for rid, side in zip((run_id, other_id), sides, strict=True)],
                **compare_sides(*sides)}

    async def results(self, principal: Principal, run_id: str) -> dict[str, Any]:
        """The JSON report; 409 until the run has completed."""
        run = await self.get(principal, run_id)
        if run.status != "completed" or run.result is None:
            reason = f": {run.error}" if run.error else ""
            raise Conflict(f"test run '{run_id}' is {run.status}{reason}; results are "
                           "there once it has completed", {"status": run.status})
        return run.result

    async def cancel(self, principal: Principal, run_id: str) -> TestRun:
        """Stop a queued or running run (a finished one is left as it is)."""
        run = await self.get(principal, run_id)
        if not run.finished and await self.store.cancel(run_id):
            await self.queue.cancel(run_id)
        return await self.get(principal, run_id)


def _owner(principal: Principal) -> str | None:
    return None if principal.is_admin else principal.user_id
