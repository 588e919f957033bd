"""The optimise and draft loops against the scripted model, validated by the real rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from personae.errors import InvalidInput, ProviderError
from personae.personas.schema import PersonaDefinition
from personae.providers.base import GenerationSettings
from personae.providers.fake.scripted import ScriptedLLM
from personae.writing.adaptation import adapt
from personae.writing.cleaning import clean
from personae.writing.drafting import (
    AttemptDelta,
    AttemptScored,
    AttemptStarted,
    WritingDone,
    WritingEvent,
    _Attempts,
    draft,
    optimise,
)
from personae.writing.platforms import platform
from personae.writing.reports import (
    Deviation,
    StyleDistance,
    StyleReport,
    ValidationReport,
    Verdict,
)

X = platform("x")
PERSONA = PersonaDefinition(id="dana", name="Dana Reyes")
SHORT = "We shipped billing on Tuesday. It broke on Wednesday. Thursday we knew why."
LONG = "We shipped the new billing flow and it was a long week. " * 6  # ~340 chars


def run_optimise(llm: ScriptedLLM, text: str = LONG, max_attempts: int = 3
                 ) -> AsyncIterator[WritingEvent]:
    return optimise(llm, GenerationSettings(), text=text, spec=X, persona_id="dana",
                    version=1, definition=PERSONA, max_attempts=max_attempts)


async def events_of(stream: AsyncIterator[WritingEvent]) -> list[WritingEvent]:
    return [event async for event in stream]


def done_of(events: list[WritingEvent]) -> WritingDone:
    assert isinstance(events[-1], WritingDone)
    assert sum(isinstance(event, WritingDone) for event in events) == 1
    return events[-1]


async def test_optimise_keeps_the_attempt_that_fits_and_stops_there() -> None:
    llm = ScriptedLLM(when_empty="fail").queue(LONG + " Longer still.", SHORT, "unused")

    done = done_of(await events_of(run_optimise(llm)))

    assert (done.best, done.text, done.meets_limits) == (2, SHORT, True)
    assert [a.number for a in done.attempts] == [0, 1, 2]
    assert [a.report.meets_limits for a in done.attempts] == [False, False, True]
    assert len(llm.requests) == 2 and llm.pending == 1  # stopped early
    assert done.reason == "met every limit on attempt 2; no samples to compare its style with"
    system = llm.requests[0].messages[0].content
    assert system.startswith(adapt(X, persona_id="dana", version=1,
                                   definition=PERSONA).instructions)
    assert "the text is" in llm.requests[0].messages[1].content  # the violation to fix


async def test_the_original_is_attempt_zero_and_may_need_no_model_at_all() -> None:
    llm = ScriptedLLM(when_empty="fail")

    events = await events_of(run_optimise(llm, text=SHORT))

    assert events[:2] == [AttemptStarted(0), events[1]]
    assert isinstance(events[1], AttemptScored) and events[1].number == 0
    done = done_of(events)
    assert (done.best, done.text, done.meets_limits) == (0, SHORT, True)
    assert done.reason.startswith("the original draft met every limit")
    assert llm.requests == []


async def test_a_result_that_breaks_a_limit_says_so() -> None:
    llm = ScriptedLLM().queue(LONG + " More.", LONG + " Even more words.")

    done = done_of(await events_of(run_optimise(llm, max_attempts=2)))

    assert done.meets_limits is False and done.report.meets_limits is False
    assert done.best == 0 and done.text == LONG  # never worse than what was sent
    used = next(m for m in done.report.meters if m.name == "text").used
    assert done.reason == (f"no attempt met the 280-character limit: the best "
                           f"(the original draft) is {used}/280, {used - 280} over; no "
                           "samples to compare its style with")
    assert len(done.text) == len(LONG)  # never cut to fit


async def test_max_attempts_bounds_the_model_calls() -> None:
    llm = ScriptedLLM().queue(*[LONG] * 5)

    done = done_of(await events_of(run_optimise(llm, max_attempts=2)))

    assert len(llm.requests) == 2 and llm.pending == 3
    assert len(done.attempts) == 3  # the original and two rewrites


async def test_deltas_stream_in_order_between_start_and_score() -> None:
    llm = ScriptedLLM().queue(["We shipped ", "on Tuesday. ", "It broke."])

    events = await events_of(run_optimise(llm))

    first = [e for e in events if getattr(e, "number", None) == 1]
    assert first == [AttemptStarted(1), AttemptDelta(1, "We shipped "),
                     AttemptDelta(1, "on Tuesday. "), AttemptDelta(1, "It broke."), first[-1]]
    assert isinstance(first[-1], AttemptScored)
    assert first[-1].text == "We shipped on Tuesday. It broke."


async def test_wrappers_are_stripped_before_validation() -> None:
    llm = ScriptedLLM().queue(f'Here is your rewritten post:\n\n"{SHORT}"\n\nNote: kept it short.')

    done = done_of(await events_of(run_optimise(llm)))

    assert done.best == 1 and done.text == SHORT


async def test_an_empty_answer_is_a_failed_attempt_not_a_crash() -> None:
    llm = ScriptedLLM().queue("   ", SHORT)

    done = done_of(await events_of(run_optimise(llm)))

    failed = done.attempts[1]
    assert failed.text == "" and failed.report.meets_limits is False
    assert failed.report.violations[0].message == "the model returned no text"
    assert done.best == 2


async def test_a_provider_failure_mid_stream_is_a_failed_attempt() -> None:
    llm = ScriptedLLM().queue(["We shipped", ProviderError("scripted", "connection lost")],
                              SHORT)

    done = done_of(await events_of(run_optimise(llm)))

    assert "connection lost" in done.attempts[1].report.violations[0].message
    assert done.best == 2 and done.meets_limits


async def test_draft_writes_from_the_topic_then_rewrites_its_best() -> None:
    llm = ScriptedLLM().queue(LONG, SHORT)

    done = done_of(await events_of(draft(
        llm, GenerationSettings(), topic="the billing outage", notes="it took three days",
        spec=X, persona_id="dana", version=1, definition=PERSONA)))

    assert (done.best, done.text, done.meets_limits) == (2, SHORT, True)
    assert "Topic: the billing outage" in llm.requests[0].last_user
    assert "it took three days" in llm.requests[0].last_user
    assert LONG.strip() in llm.requests[1].last_user  # the first attempt, to fix
    assert llm.requests[0].settings.stream and llm.requests[0].settings.json_schema is None


async def test_a_draft_with_no_usable_answer_returns_no_text_and_says_why() -> None:
    llm = ScriptedLLM().queue("", ProviderError("scripted", "down"))

    done = done_of(await events_of(draft(
        llm, GenerationSettings(), topic="billing", spec=X, persona_id="dana", version=1,
        definition=PERSONA, max_attempts=2)))

    assert done.text == "" and done.meets_limits is False
    assert done.reason.startswith("no attempt produced a post: attempt 1: the model "
                                  "returned no text; attempt 2: the model failed")


@pytest.mark.parametrize("call", [
    lambda llm: run_optimise(llm, max_attempts=0),
    lambda llm: run_optimise(llm, max_attempts=6),
    lambda llm: run_optimise(llm, text=" "),
    lambda llm: run_optimise(llm, text="a" * 100_001),
    lambda llm: draft(llm, GenerationSettings(), topic="", spec=X, persona_id="dana",
                      version=1, definition=PERSONA),
])
def test_bad_input_is_refused_before_any_event(call: object) -> None:
    with pytest.raises(InvalidInput):
        call(ScriptedLLM())  # type: ignore[operator]


def report(meets: bool, score: float | None, verdict: Verdict = "near") -> ValidationReport:
    style = None if score is None else StyleReport(
        distance=StyleDistance(value=1.0, typical=0.8, z=1.0, verdict=verdict,
                               explanation="near"),
        sentence_length=Deviation(name="sentence_length", draft=8, samples=8,
                                  unit="words per sentence", notable=False,
                                  explanation="same"),
        score=score, explanation="near")
    return ValidationReport(platform="x", persona_id="dana", persona_version=1,
                            meets_limits=meets, style=style)


def test_the_best_meets_limits_first_then_scores_highest_then_came_first() -> None:
    attempts = _Attempts()
    for number, scored in enumerate([report(False, 95), report(True, None),
                                     report(True, 60), report(True, 80), report(True, 80)]):
        attempts.add(AttemptScored(number, f"text {number}", scored))
    assert attempts.best().number == 3
    assert not attempts.good_enough()  # "near" is not close: keep trying
    attempts.add(AttemptScored(5, "text 5", report(True, 70, "close")))
    assert attempts.best().number == 3 and not attempts.good_enough()
    attempts.add(AttemptScored(6, "text 6", report(True, 90, "close")))
    assert attempts.good_enough()
    assert attempts.done().reason == ("met every limit on attempt 6; style close to the "
                                      "samples (score 90)")


@pytest.mark.parametrize(("answer", "post"), [
    ("```\nHello world.\n```", "Hello world."),
    ("```text\n\"Hello world.\"\n```", "Hello world."),
    ("Sure! Here's a rewrite:\nHello world.", "Hello world."),
    ("Rewritten post: Hello world.", "Hello world."),
    ("Hello world.\n\nHook: opens with a greeting\n(Character count: 12)", "Hello world."),
    ("\u201cHello world.\u201d", "Hello world."),
    ("Hello world.\n\nNote: this version stays under the limit.", "Hello world."),
])
def test_clean_strips_only_wrappers(answer: str, post: str) -> None:
    assert clean(answer) == post


@pytest.mark.parametrize("post", [
    '"Ship it," she said. "Then write about it."',  # quotes inside: not a wrapper
    "Here is what I learned this week: less is more.",  # a post's own first line
    "Three notes from the launch.\n\nNote: we were wrong about Fridays. Fix it.",
    "Hooked on shipping.\n\n#shipping #billing",
])
def test_clean_keeps_the_post_s_own_words(post: str) -> None:
    assert clean(post) == post


async def test_each_attempt_has_its_own_seed_and_a_warmer_retry() -> None:
    llm = ScriptedLLM().queue(LONG + " More.", LONG + " Even more.", LONG + " And more.")

    await events_of(optimise(llm, GenerationSettings(temperature=0.5, seed=7), text=LONG,
                             spec=X, persona_id="dana", version=1, definition=PERSONA))

    settings = [request.settings for request in llm.requests]
    assert [s.seed for s in settings] == [8, 9, 10]
    assert [s.temperature for s in settings] == [0.5, 0.65, 0.8]


async def test_the_retry_prompt_says_how_much_to_cut_and_what_to_drop() -> None:
    x_llm = ScriptedLLM().queue(SHORT)
    await events_of(run_optimise(x_llm, max_attempts=1))
    used = next(m for m in validate_x(LONG).meters if m.name == "text").used
    assert (f"the text is {used}/280: remove at least {used - 280} characters"
            in x_llm.requests[0].messages[1].content)

    tagged = SHORT + " #a1 #b2 #c3 #d4 #e5 #f6 #g7"
    llm = ScriptedLLM().queue(SHORT)
    await events_of(optimise(llm, GenerationSettings(), text=tagged,
                             spec=platform("instagram"), persona_id="dana", version=1,
                             definition=PERSONA, max_attempts=1))
    assert "use at most 5 hashtags: drop #f6, #g7" in llm.requests[0].messages[1].content


async def test_the_same_text_again_is_recorded_as_the_same_not_a_new_candidate() -> None:
    rewrite = LONG.replace("long week", "longer week")
    llm = ScriptedLLM().queue(rewrite, rewrite, LONG)

    done = done_of(await events_of(run_optimise(llm)))

    assert [a.same_as for a in done.attempts] == [None, None, 1, 0]
    assert done.best in (0, 1) and done.meets_limits is False
    assert ("the model returned the same text on attempt 2 (same as attempt 1), "
            "attempt 3 (same as the original draft)") in done.reason


def validate_x(text: str) -> ValidationReport:
    from personae.writing.validation import validate
    return validate(text, X, persona_id="dana", version=1, definition=PERSONA)
