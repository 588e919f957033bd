"""The runner on a real runtime (SQLite) with the scripted model; reports from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.config import ProviderConfig, Settings
from personae.providers.fake.scripted import ScriptedLLM
from personae.quality.judge import NO_JUDGE
from personae.quality.report import flips, json_report, junit_xml
from personae.quality.results import Target
from personae.quality.runner import PersonaTester
from personae.quality.suite import parse_suite
from personae.runtime import Runtime
from tests.support.runtime import open_runtime

SUITE = """
name: tina
persona: tina-kulkarni
cases:
  - name: hindi
    turns: ["मेरी शादी कब होगी?", "और?"]
    repeat: 2
    expect:
      - {kind: language, is: hi}
      - {kind: no_loops}
  - name: greets
    turns: ["नमस्ते"]
    expect: [{kind: greeting}]
  - name: judged
    turns: ["hello"]
    expect: [{kind: judge, rubric: "Polite.", min_score: 4}]
"""
HINDI = ["आपकी कुंडली देखकर बताती हूँ, कृपया जन्म तिथि बताइए।",
         "विवाह का योग अगले वर्ष बनता है, धैर्य रखिए।"]


@pytest.fixture
async def runtime(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, default_provider="model",
                        anonymous_loopback=False, judge_provider=None,
                        providers={"model": ProviderConfig(kind="scripted"),
                                   "judge": ProviderConfig(kind="scripted")})
    async with open_runtime(settings) as opened:
        await opened.load_samples()
        yield opened


def make_tester(runtime: Runtime, judge: str | None = None) -> PersonaTester:
    return PersonaTester(runtime.personas, runtime.prepared, runtime.providers,
                         runtime.conversations, judge)


def scripted(runtime: Runtime, name: str) -> ScriptedLLM:
    llm = runtime.providers.get(name)
    assert isinstance(llm, ScriptedLLM)
    return llm


async def test_a_suite_runs_every_case_and_skips_the_judge(runtime: Runtime) -> None:
    model = scripted(runtime, "model").queue(*HINDI, HINDI[0], "Hello in English, sorry.",
                                             "namaste", "hi")
    admin = await runtime.auth.local_admin()
    result = await make_tester(runtime).run(admin, parse_suite(SUITE), Target("tina-kulkarni"))
    hindi, greets, judged = result.cases
    assert [run.status for run in hindi.runs] == ["passed", "failed"]
    assert (hindi.passed_runs, hindi.counted_runs, hindi.status) == (1, 2, "failed")
    assert greets.status == "passed"
    assert judged.status == "skipped"
    assert [c.detail for c in judged.skipped_checks] == [NO_JUDGE]
    assert not result.passed
    # the second turn saw the first exchange as history
    second = model.requests[1].messages
    assert [m.content for m in second if m.role != "system"] == ["मेरी शादी कब होगी?",
                                                                 HINDI[0], "और?"]
    sessions, _ = await runtime.conversations.list(admin)
    assert sessions == []  # the greeting's session is deleted


async def test_the_judge_scores_with_structured_output(runtime: Runtime) -> None:
    suite = parse_suite("name: j\ncases:\n  - name: judged\n    turns: [hello]\n"
                        "    expect: [{kind: judge, rubric: Polite., min_score: 4}]\n")
    judge = scripted(runtime, "judge").queue('{"score": 5, "reason": "polite"}',
                                             '{"score": 2, "reason": "rude"}', "not json")
    admin = await runtime.auth.local_admin()
    run = make_tester(runtime, "judge").run
    target = Target("tina-kulkarni", provider="model")
    results = [await run(admin, suite, target) for _ in range(3)]
    assert [r.cases[0].status for r in results] == ["passed", "failed", "failed"]
    assert "judge gave no valid score" in results[2].cases[0].runs[0].checks[0].detail
    assert judge.requests[0].settings.json_schema is not None
    assert "Polite." in judge.requests[0].messages[-1].content


async def test_reports_and_flips(runtime: Runtime) -> None:
    scripted(runtime, "model").queue(*HINDI, *HINDI, "नमस्ते", "hi", "bad", "bad", "x", "x",
                                     "नमस्ते", "hi")
    admin = await runtime.auth.local_admin()
    suite = parse_suite(SUITE)
    good = await make_tester(runtime).run(admin, suite, Target("tina-kulkarni"))
    bad = await make_tester(runtime).run(admin, suite, Target("tina-kulkarni", model="other"))
    assert flips(bad, good) == {"hindi": "pass→fail", "greets": "", "judged": ""}
    report = json_report([bad, good])
    assert report["schema"] == "personae.test-report/1"
    assert report["flips"] == {"hindi": "pass→fail"}
    assert report["sides"][0]["cases"][0]["interval"] == [0.0, 0.6576]
    root = ET.fromstring(junit_xml([bad, good]))
    first, second = root.findall("testsuite")
    assert (first.get("tests"), first.get("failures"), first.get("skipped")) == ("3", "1", "1")
    hindi = first.find("testcase[@name='hindi']")
    assert hindi is not None
    failure = hindi.find("failure")
    assert failure is not None and "language" in (failure.text or "")
    skipped = first.find("testcase[@name='judged']/skipped")
    assert skipped is not None and skipped.get("message") == NO_JUDGE
    assert second.get("failures") == "0"


async def test_an_older_version_can_be_tested(runtime: Runtime) -> None:
    admin = await runtime.auth.local_admin()
    await runtime.personas.patch(admin, "tina-kulkarni", {"greetings": ["नया नमस्कार"]},
                                 base_version=1)
    scripted(runtime, "model").queue("x")
    suite = parse_suite("name: g\ncases:\n  - name: greets\n    turns: [hi]\n"
                        "    expect: [{kind: greeting}]\n")
    old = await make_tester(runtime).run(admin, suite, Target("tina-kulkarni", version=1))
    assert old.version == 1
    assert old.cases[0].status == "skipped"
    current = await make_tester(runtime).run(admin, suite, Target("tina-kulkarni"))
    assert current.version == 2
    assert current.cases[0].status == "passed"
