"""``personae test SUITE.yaml``: run a persona test suite, as the local admin.

Exit status: 0 every case at or above its threshold, 1 a case below it (in compare
mode: on the primary side), 2 a usage or configuration error (a bad suite is named by
its path).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import Progress

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.session import as_admin, settings_for
from personae.errors import InvalidInput, PersonaeError
from personae.quality.report import failure_lines, flips, json_report, junit_xml
from personae.quality.results import CaseResult, SuiteResult, Target
from personae.quality.runner import PersonaTester
from personae.quality.suite import Suite, load_suite
from personae.runtime import Runtime

USAGE_ERROR = 2


def run_tests(
    ctx: typer.Context,
    suite_path: Path = typer.Argument(..., metavar="SUITE", help="suite YAML file"),
    persona: str | None = typer.Option(None, "--persona", help="persona id (default: the "
                                       "suite's `persona`)"),
    version: int | None = typer.Option(None, "--version", min=1, help="persona version "
                                       "(default: the current one)"),
    model: str | None = typer.Option(None, "--model", help="PROVIDER, MODEL or "
                                     "PROVIDER:MODEL (default: the persona's)"),
    repeat: int | None = typer.Option(None, "--repeat", min=1, max=100,
                                      help="repetitions per case (overrides the suite)"),
    json_file: Path | None = typer.Option(None, "--json", help="write a JSON report"),
    junit_file: Path | None = typer.Option(None, "--junit", help="write JUnit XML"),
    against_version: int | None = typer.Option(
        None, "--against-version", min=1, help="compare with this persona version"),
    models: str | None = typer.Option(None, "--models", metavar="A,B",
                                      help="compare two models (A is the primary side)"),
) -> None:
    """Run a persona test suite: a table per case, optional JSON and JUnit reports."""
    suite, targets = _plan(ctx, suite_path, persona, version, model, against_version, models)

    async def work(runtime: Runtime, principal: Principal) -> list[SuiteResult]:
        tester = PersonaTester(runtime.personas, runtime.prepared, runtime.providers,
                               runtime.conversations, runtime.settings.judge_provider)
        return [await _run_side(tester, principal, suite, target, repeat)
                for target in targets]

    try:
        results = as_admin(ctx, work)
    except PersonaeError as exc:  # the suite could not run (persona, provider, model)
        output.report_error(exc)
        raise typer.Exit(USAGE_ERROR) from None
    _show(results)
    if json_file is not None:
        json_file.write_text(json.dumps(json_report(results), ensure_ascii=False, indent=2),
                             encoding="utf-8")
    if junit_file is not None:
        junit_file.write_text(junit_xml(results), encoding="utf-8")
    raise typer.Exit(0 if results[0].passed else 1)


def _plan(ctx: typer.Context, suite_path: Path, persona: str | None, version: int | None,
          model: str | None, against_version: int | None,
          models: str | None) -> tuple[Suite, list[Target]]:
    """The suite and the sides to run; any problem exits with status 2."""
    try:
        suite = load_suite(suite_path)
        persona_id = persona or suite.persona
        if not persona_id:
            raise InvalidInput("give --persona ID (the suite names no persona)")
        if against_version is not None and models is not None:
            raise InvalidInput("give --against-version or --models, not both")
        configured = set(settings_for(ctx).providers) | {"embedded"}
        primary = _target(persona_id, version, model, configured)
        if against_version is not None:
            return suite, [primary, Target(persona_id, against_version, primary.provider,
                                           primary.model)]
        if models is not None:
            names = [name.strip() for name in models.split(",") if name.strip()]
            if len(names) != 2:
                raise InvalidInput("--models takes two names: A,B")
            return suite, [_target(persona_id, version, name, configured) for name in names]
        return suite, [primary]
    except PersonaeError as exc:
        output.report_error(exc)
        raise typer.Exit(USAGE_ERROR) from None


def _target(persona_id: str, version: int | None, spec: str | None,
            configured: set[str]) -> Target:
    """``PROVIDER:MODEL``; a configured provider's name alone; else a model name."""
    if spec is None:
        return Target(persona_id, version)
    provider, colon, name = spec.partition(":")
    if colon:
        return Target(persona_id, version, provider or None, name or None)
    if spec in configured:
        return Target(persona_id, version, spec)
    return Target(persona_id, version, model=spec)


async def _run_side(tester: PersonaTester, principal: Principal, suite: Suite,
                    target: Target, repeat: int | None) -> SuiteResult:
    total = sum(suite.repeat_for(case, repeat) for case in suite.cases)
    with Progress(console=output.err_console, transient=True) as progress:
        task = progress.add_task(target.label, total=total)
        return await tester.run(principal, suite, target, repeat=repeat,
                                progress=lambda _case: progress.advance(task))


def _show(results: list[SuiteResult]) -> None:
    primary = results[0]
    other = results[1] if len(results) > 1 else None
    changed = flips(primary, other) if other else {}
    columns = ["case", *([f"{other.target.label}", "flip"] if other else []),
               primary.target.label, "interval", "threshold"]
    rows = []
    for case in primary.cases:
        before = other.case(case.name) if other else None
        side = [_rate(before) if before else "-", changed.get(case.name, "")] if other else []
        low, high = case.interval
        rows.append([case.name, *side, _rate(case), f"[{low:.2f}, {high:.2f}]",
                     f"{case.threshold:.0%}"])
    output.say(f"{primary.suite}: {primary.target.label} (version {primary.version})",
               style="bold")
    output.show(output.table(columns, rows, wrap=["case"]))
    for result in results:
        for case in result.cases:
            for line in failure_lines(case) if case.status == "failed" else []:
                output.say(f"  {result.target.label} / {case.name}: {line}", style="red")
            for reason in sorted({c.detail for c in case.skipped_checks}):
                output.say(f"  {result.target.label} / {case.name}: skipped: {reason}",
                           style="yellow")
    output.say("passed" if primary.passed else "failed: a case is below its threshold",
               style="green" if primary.passed else "red")


def _rate(case: CaseResult) -> str:
    if case.pass_rate is None:
        return "skipped"
    return f"{case.status} {case.passed_runs}/{case.counted_runs}"
