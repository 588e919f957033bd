"""The loops' rules found in use: a refusal is a failed attempt, the least-broken
attempt wins when none fits, each attempt asks with its own settings, and the reason
reads cleanly."""

from __future__ import annotations

import pytest

from personae.personas.breaks import why_out_of_character
from personae.personas.schema import PersonaDefinition
from personae.providers.base import GenerationSettings
from personae.providers.fake.scripted import ScriptedLLM
from personae.writing.drafting import (
    AttemptScored,
    WritingDone,
    WritingEvent,
    _Attempts,
    draft,
    optimise,
)
from personae.writing.platforms import platform
from personae.writing.reports import Deviation, StyleDistance, StyleReport, ValidationReport

X = platform("x")
PERSONA = PersonaDefinition(id="obama", name="Obama A")
POST = "Roads and bridges are built by people. Every project we fund puts a crew to work."
REFUSALS = ("Sorry, but as an AI language model, I don't have the ability to engage in "
            "discussion about that.",
            "Hi Obama A!\n\nI'm sorry, but I can't assist with that request.",
            "I\u2019m sorry, but I cannot write that post.")
SENTENCE = "We shipped billing on Tuesday and learned a lot. "  # 50 characters


async def done_of(stream: object) -> tuple[list[WritingEvent], WritingDone]:
    events = [event async for event in stream]  # type: ignore[attr-defined]
    assert isinstance(events[-1], WritingDone)
    return events, events[-1]


def run_draft(llm: ScriptedLLM, max_attempts: int = 3) -> object:
    return draft(llm, GenerationSettings(), topic="why infrastructure investment creates jobs",
                 spec=X, persona_id="obama", version=1, definition=PERSONA,
                 max_attempts=max_attempts)


@pytest.mark.parametrize("answer", REFUSALS)
def test_refusals_and_greeting_the_persona_are_out_of_character(answer: str) -> None:
    assert why_out_of_character(answer, "Obama A") is not None


def test_a_post_about_language_models_or_greeting_its_readers_is_in_character() -> None:
    assert why_out_of_character("Hi everyone! Large language models changed our "
                                "support desk this year.", "Obama A") is None


async def test_a_refusal_is_a_failed_attempt_and_never_the_result() -> None:
    llm = ScriptedLLM(when_empty="fail").queue(REFUSALS[0], REFUSALS[1], POST)
    events, done = await done_of(run_draft(llm))
    scored = [e for e in events if isinstance(e, AttemptScored)]
    assert [s.report.violations[0].code for s in scored[:2]] == ["out_of_character"] * 2
    assert (done.best, done.text) == (3, POST)


async def test_only_refusals_give_no_post_and_say_why() -> None:
    llm = ScriptedLLM(when_empty="fail").queue(*REFUSALS)
    _, done = await done_of(run_draft(llm))
    assert done.text == "" and not done.meets_limits
    assert done.reason.startswith("no attempt produced a post: attempt 1: the model refused")
    assert "met every limit" not in done.reason


async def test_when_none_fits_the_attempt_over_by_least_is_kept() -> None:
    original = (SENTENCE * 6).strip()[:298]  # 18 over X's 280
    closer = (SENTENCE * 6).strip()[:283]  # 3 over
    llm = ScriptedLLM(when_empty="fail").queue(closer)
    _, done = await done_of(optimise(llm, GenerationSettings(), text=original, spec=X,
                                     persona_id="obama", version=1, definition=PERSONA,
                                     max_attempts=1))
    assert done.best == 1 and not done.meets_limits
    assert "283/280, 3 over" in done.reason


async def test_every_attempt_asks_with_its_own_seed_and_a_warmer_temperature() -> None:
    llm = ScriptedLLM(when_empty="fail").queue(REFUSALS[0], REFUSALS[1], POST)
    await done_of(run_draft(llm))
    settings = [request.settings for request in llm.requests]
    assert len({s.seed for s in settings}) == 3
    temperatures = [s.temperature for s in settings]
    assert temperatures == sorted(temperatures) and len(set(temperatures)) == 3


def test_a_reason_with_an_unscored_style_reads_cleanly() -> None:
    unscored = StyleReport(distance=StyleDistance(
        value=0.0, typical=0.0, z=0.0, verdict="unknown",
        explanation="too little text to judge (2,500 words needed)."),
        sentence_length=Deviation(name="sentence_length", draft=8, samples=8,
                                  unit="words per sentence", notable=False,
                                  explanation="same"), explanation="-")
    report = ValidationReport(platform="x", persona_id="obama", persona_version=1,
                              meets_limits=True, style=unscored)
    attempts = _Attempts()
    attempts.add(AttemptScored(1, POST, report))
    attempts.add(AttemptScored(2, POST, report, same_as=1))
    reason = attempts.done().reason
    assert ".;" not in reason and "needed); the model returned the same text" in reason
