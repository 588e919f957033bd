"""Suite results as JSON (a stable schema), JUnit XML, and compare flips."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Literal

from personae.quality.results import CaseResult, SuiteResult

REPORT_SCHEMA = "personae.test-report/1"
Flip = Literal["pass→fail", "fail→pass", ""]


def case_data(case: CaseResult) -> dict[str, Any]:
    low, high = case.interval
    return {
        "name": case.name, "status": case.status, "threshold": case.threshold,
        "passed": case.passed_runs, "counted": case.counted_runs, "runs": len(case.runs),
        "pass_rate": case.pass_rate, "interval": [round(low, 4), round(high, 4)],
        "repetitions": [
            {"status": run.status, "error": run.error, "replies": run.replies,
             "checks": [{"kind": c.kind, "turn": c.turn, "passed": c.passed,
                         "detail": c.detail} for c in run.checks]}
            for run in case.runs],
    }


def suite_data(result: SuiteResult) -> dict[str, Any]:
    target = result.target
    return {"suite": result.suite, "passed": result.passed,
            "persona": target.persona_id, "version": result.version,
            "provider": target.provider, "model": target.model,
            "cases": [case_data(case) for case in result.cases]}


def json_report(results: list[SuiteResult]) -> dict[str, Any]:
    """One document for one run (or both sides of a compare, primary first)."""
    report: dict[str, Any] = {"schema": REPORT_SCHEMA, "passed": results[0].passed,
                              "sides": [suite_data(r) for r in results]}
    if len(results) == 2:
        report["flips"] = {name: flip for name, flip in flips(*results).items() if flip}
    return report


def junit_xml(results: list[SuiteResult]) -> str:
    """JUnit XML: one testsuite per side, one testcase per case; a case below its
    threshold has a ``<failure>`` with the failed checks, a skipped-only one
    ``<skipped>`` with the reasons."""
    root = ET.Element("testsuites", name="personae")
    for result in results:
        failed = sum(c.status == "failed" for c in result.cases)
        skipped = sum(c.status == "skipped" for c in result.cases)
        suite = ET.SubElement(root, "testsuite", name=f"{result.suite} [{result.target.label}]",
                              tests=str(len(result.cases)), failures=str(failed),
                              skipped=str(skipped), errors="0")
        for case in result.cases:
            element = ET.SubElement(suite, "testcase", name=case.name,
                                    classname=f"{result.target.persona_id}.v{result.version}")
            if case.status == "failed":
                failure = ET.SubElement(element, "failure", message=_summary(case))
                failure.text = "\n".join(failure_lines(case))
            elif case.status == "skipped":
                ET.SubElement(element, "skipped", message="; ".join(
                    sorted({c.detail for c in case.skipped_checks})) or "nothing checked")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def failure_lines(case: CaseResult) -> list[str]:
    """Each failed check (or error) of each repetition, one line each."""
    lines = []
    for index, run in enumerate(case.runs, 1):
        if run.error:
            lines.append(f"run {index}: error: {run.error}")
        for check in run.failures:
            where = "greeting" if check.turn < 0 else f"turn {check.turn + 1}"
            lines.append(f"run {index}, {where}: {check.kind}: {check.detail}")
    return lines


def flips(primary: SuiteResult, other: SuiteResult) -> dict[str, Flip]:
    """Per case in both: how its status changed from ``other`` to ``primary``."""
    found: dict[str, Flip] = {}
    for case in primary.cases:
        before = other.case(case.name)
        if before is not None:
            found[case.name] = flip_of(before.status, case.status)
    return found


def flip_of(before: str, after: str) -> Flip:
    """A case that went from passing to failing (or back); skipped ones never flip."""
    if before == "passed" and after == "failed":
        return "pass→fail"
    if before == "failed" and after == "passed":
        return "fail→pass"
    return ""


def compare_sides(primary: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Two runs' reports (their primary sides, as :func:`suite_data` writes them) case by
    case: each case of ``primary`` beside the same case of ``other``, and the flips."""
    before = {case["name"]: case for case in other["cases"]}
    cases = []
    for case in primary["cases"]:
        earlier = before.get(case["name"])
        cases.append({
            "name": case["name"], "status": case["status"], "pass_rate": case["pass_rate"],
            "passed": case["passed"], "counted": case["counted"],
            "other_status": earlier["status"] if earlier else None,
            "other_pass_rate": earlier["pass_rate"] if earlier else None,
            "other_passed": earlier["passed"] if earlier else None,
            "other_counted": earlier["counted"] if earlier else None,
            "flip": flip_of(earlier["status"], case["status"]) if earlier else ""})
    return {"cases": cases, "flips": {c["name"]: c["flip"] for c in cases if c["flip"]}}


def _summary(case: CaseResult) -> str:
    rate = case.pass_rate or 0.0
    return (f"pass rate {rate:.0%} ({case.passed_runs}/{case.counted_runs}) below "
            f"threshold {case.threshold:.0%}")
