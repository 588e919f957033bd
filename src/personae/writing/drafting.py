"""The optimise and draft loops: ask, clean, validate, keep the best, try again.

Both are async iterators of small events: :class:`AttemptStarted`, the model's
:class:`AttemptDelta` text as it streams, :class:`AttemptScored` once an attempt is
cleaned (:mod:`.cleaning`) and validated, and one :class:`WritingDone` at the end.

* The best attempt meets the platform's hard limits first (when none does, the one
  breaking them least: fewest violations, then least over the length limit), then has
  the highest style score (an attempt without a style report counts lowest), then came
  earliest.
* ``optimise`` scores the draft it was sent as attempt 0, so its result is never
  worse than that draft; each later attempt rewrites the best so far, told what
  that one got wrong. ``draft`` writes from the topic, then rewrites likewise.
* The loop stops early once the best attempt meets every limit and its style is
  "close" to the samples (or there are no samples to compare with).
* An attempt whose model call fails, returns no text, or is no post in the persona's
  voice (a refusal, the model speaking as an AI, or greeting the persona by name:
  :mod:`personae.personas.breaks`) is scored as failed (a report with the reason as its
  one violation) and never chosen over a real one, nor offered as the result.
* Every attempt asks differently: its own seed (the configured seed, or 0, plus the
  attempt number), a temperature a little higher on each retry, and a prompt naming
  what to cut. An attempt that returns the text of an earlier one is recorded as the
  same (``same_as``), is no new candidate, and the reason says so.
* A result over a hard limit is never cut to fit: it keeps ``meets_limits`` False and
  the reason says by how much it is over.
* ``WritingDone.reason`` says in plain words what came out, including which limit
  the result still breaks.

Inputs are checked when the iterator is made, so a bad request fails before any event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from personae.errors import InvalidInput, ProviderError
from personae.personas.breaks import why_out_of_character
from personae.personas.schema import PersonaDefinition
from personae.providers.base import LLM, ChatMessage, GenerationSettings, TextDelta
from personae.providers.streams import aclose_stream
from personae.writing.adaptation import adapt
from personae.writing.building import check_attempts
from personae.writing.cleaning import clean
from personae.writing.platforms import PlatformSpec
from personae.writing.prompts import draft_messages, optimise_messages
from personae.writing.reports import ValidationReport, Violation
from personae.writing.validation import validate

MAX_TEXT_CHARS = 100_000
MAX_TOPIC_CHARS = 2_000
MAX_NOTES_CHARS = 4_000
MIN_ANSWER_TOKENS, MAX_ANSWER_TOKENS = 96, 1024
BASE_TEMPERATURE = 0.7  # when the settings name none
RETRY_TEMPERATURE_STEP, MAX_TEMPERATURE = 0.15, 1.2


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    number: int


@dataclass(frozen=True, slots=True)
class AttemptDelta:
    number: int
    text: str


@dataclass(frozen=True, slots=True)
class AttemptScored:
    number: int
    text: str
    report: ValidationReport
    same_as: int | None = None  # the earlier attempt whose text this one repeats


@dataclass(frozen=True, slots=True)
class WritingDone:
    best: int
    text: str
    report: ValidationReport
    attempts: list[AttemptScored]
    meets_limits: bool
    reason: str


WritingEvent = AttemptStarted | AttemptDelta | AttemptScored | WritingDone


@dataclass(frozen=True, slots=True)
class _Target:
    """What a post is written for and validated against."""

    spec: PlatformSpec
    persona_id: str
    version: int
    definition: PersonaDefinition

    def validate(self, text: str) -> ValidationReport:
        return validate(text, self.spec, persona_id=self.persona_id, version=self.version,
                        definition=self.definition)

    def failed(self, code: str, reason: str) -> ValidationReport:
        return ValidationReport(platform=self.spec.id, persona_id=self.persona_id,
                                persona_version=self.version, meets_limits=False,
                                violations=[Violation(code=code, message=reason)],
                                warnings=[reason])

    def instructions(self) -> str:
        return adapt(self.spec, persona_id=self.persona_id, version=self.version,
                     definition=self.definition).instructions


def optimise(llm: LLM, settings: GenerationSettings, *, text: str, spec: PlatformSpec,
             persona_id: str, version: int, definition: PersonaDefinition,
             max_attempts: int = 3) -> AsyncIterator[WritingEvent]:
    """Rewrite ``text`` in the persona's voice for ``spec``, up to ``max_attempts`` times."""
    check_attempts(max_attempts)
    _check_length("text", text, MAX_TEXT_CHARS, required=True)
    target = _Target(spec, persona_id, version, definition)
    return _optimise(llm, writing_settings(settings, spec), target, target.instructions(),
                     text, max_attempts)


def draft(llm: LLM, settings: GenerationSettings, *, topic: str, notes: str = "",
          spec: PlatformSpec, persona_id: str, version: int, definition: PersonaDefinition,
          max_attempts: int = 3) -> AsyncIterator[WritingEvent]:
    """Write a new post on ``topic`` in the persona's voice for ``spec``."""
    check_attempts(max_attempts)
    _check_length("topic", topic, MAX_TOPIC_CHARS, required=True)
    _check_length("notes", notes, MAX_NOTES_CHARS, required=False)
    target = _Target(spec, persona_id, version, definition)
    return _draft(llm, writing_settings(settings, spec), target, target.instructions(),
                  topic.strip(), notes.strip(), max_attempts)


def writing_settings(settings: GenerationSettings, spec: PlatformSpec) -> GenerationSettings:
    """Plain streamed text, with room for a little more than the platform allows."""
    room = spec.text_limit.max // 3 + 32
    max_tokens = settings.max_tokens or min(MAX_ANSWER_TOKENS, max(MIN_ANSWER_TOKENS, room))
    return replace(settings, json_schema=None, json_object=False, stream=True,
                   max_tokens=max_tokens)


async def _optimise(llm: LLM, settings: GenerationSettings, target: _Target,
                    instructions: str, text: str, max_attempts: int
                    ) -> AsyncIterator[WritingEvent]:
    attempts = _Attempts()
    yield AttemptStarted(0)
    original = AttemptScored(0, text, target.validate(text))
    attempts.add(original)
    yield original
    for number in range(1, max_attempts + 1):
        if attempts.good_enough():
            break
        best = attempts.best()
        messages = optimise_messages(instructions, best.text, best.report)
        async for event in _attempt(llm, settings, messages, number, target, attempts):
            yield event
    yield attempts.done()


async def _draft(llm: LLM, settings: GenerationSettings, target: _Target, instructions: str,
                 topic: str, notes: str, max_attempts: int) -> AsyncIterator[WritingEvent]:
    attempts = _Attempts()
    for number in range(1, max_attempts + 1):
        if attempts.good_enough():
            break
        best = attempts.best_real()
        messages = (draft_messages(instructions, topic, notes) if best is None
                    else optimise_messages(instructions, best.text, best.report))
        async for event in _attempt(llm, settings, messages, number, target, attempts):
            yield event
    yield attempts.done()


def attempt_settings(settings: GenerationSettings, number: int) -> GenerationSettings:
    """Attempt ``number``'s own seed, and a little more temperature on each retry, so
    a deterministic model does not answer every attempt with the same text."""
    base = BASE_TEMPERATURE if settings.temperature is None else settings.temperature
    temperature = min(MAX_TEMPERATURE, max(base, base + RETRY_TEMPERATURE_STEP * (number - 1)))
    return replace(settings, seed=(settings.seed or 0) + number,
                   temperature=round(temperature, 3))


async def _attempt(llm: LLM, settings: GenerationSettings, messages: list[ChatMessage],
                   number: int, target: _Target, attempts: _Attempts
                   ) -> AsyncIterator[WritingEvent]:
    """One model call: its deltas as they come, then its score."""
    yield AttemptStarted(number)
    parts: list[str] = []
    failure: str | None = None
    events = llm.stream(messages, attempt_settings(settings, number))
    try:
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                parts.append(event.text)
                yield AttemptDelta(number, event.text)
    except (ProviderError, TimeoutError) as exc:
        failure = f"the model failed: {getattr(exc, 'message', None) or exc!s}"
    finally:
        await aclose_stream(events)
    text = clean("".join(parts))
    code = "no_text"
    if failure is None and not text:
        failure = "the model returned no text"
    elif failure is None:
        failure, code = why_out_of_character(text, target.definition.name), "out_of_character"
    if failure is not None:
        scored = AttemptScored(number, "", target.failed(code, failure))
    else:
        earlier = attempts.with_text(text)
        report = target.validate(text) if earlier is None else earlier.report
        scored = AttemptScored(number, text, report,
                               same_as=None if earlier is None else earlier.number)
    attempts.add(scored, failed=failure is not None)
    yield scored


@dataclass(slots=True)
class _Attempts:
    """The attempts so far and which of them failed."""

    scored: list[AttemptScored] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)

    def add(self, scored: AttemptScored, *, failed: bool = False) -> None:
        self.scored.append(scored)
        if failed:
            self.failed.add(scored.number)

    def with_text(self, text: str) -> AttemptScored | None:
        """The first real attempt with exactly this text."""
        return next((a for a in self._candidates() if a.text.strip() == text.strip()), None)

    def best(self) -> AttemptScored:
        return max(self._candidates() or self.scored, key=self._rank)

    def best_real(self) -> AttemptScored | None:
        real = [a for a in self._candidates() if a.number not in self.failed]
        return max(real, key=self._rank) if real else None

    def _candidates(self) -> list[AttemptScored]:
        """Attempts that count: a repeat of an earlier text is no new candidate."""
        return [a for a in self.scored if a.same_as is None]

    def good_enough(self) -> bool:
        best = self.best_real()
        return best is not None and best.report.meets_limits and _style_close(best.report)

    def done(self) -> WritingDone:
        best = self.best()
        return WritingDone(best.number, best.text, best.report, list(self.scored),
                           best.report.meets_limits, self._reason(best) + self._repeats())

    def _rank(self, attempt: AttemptScored) -> tuple[bool, bool, int, int, float, int]:
        """Real before failed, within the limits before not; among attempts that break
        them, the one breaking them least (fewest violations, least over the length);
        then the style score, then the earliest."""
        report = attempt.report
        score = None if report.style is None else report.style.score
        return (attempt.number not in self.failed, report.meets_limits,
                -len(report.violations), -_over_length(report),
                -1.0 if score is None else score, -attempt.number)

    def _repeats(self) -> str:
        repeats = [f"attempt {a.number} (same as {_named(a.same_as)})"
                   for a in self.scored if a.same_as is not None]
        return ("; the model returned the same text on " + ", ".join(repeats)
                if repeats else "")

    def _reason(self, best: AttemptScored) -> str:
        if best.number in self.failed:
            return "no attempt produced a post: " + "; ".join(
                f"attempt {a.number}: {a.report.violations[0].message}" for a in self.scored)
        which = "the original draft" if best.number == 0 else f"attempt {best.number}"
        style = style_phrase(best.report)
        if best.report.meets_limits:
            return f"{which} met every limit; {style}" if best.number == 0 else (
                f"met every limit on {which}; {style}")
        return f"{limits_phrase(best.report, which)}; {style}"


def _over_length(report: ValidationReport) -> int:
    """How far past its hard length limits a draft is, in the platform's own units."""
    return sum(max(0, m.used - m.limit) for m in report.meters
               if m.hard and m.name in ("text", "title", "description"))


def _style_close(report: ValidationReport) -> bool:
    return report.style is None or report.style.distance.verdict == "close"


def style_phrase(report: ValidationReport) -> str:
    style = report.style
    if style is None:
        return "no samples to compare its style with"
    verdict = style.distance.verdict
    if verdict == "unknown" or style.score is None:
        return f"style not scored: {style.distance.explanation.rstrip('. ')}"
    where = {"close": "close to", "near": "near", "far": "far from"}[verdict]
    return f"style {where} the samples (score {style.score:.0f})"


def limits_phrase(report: ValidationReport, which: str) -> str:
    """Which hard limit the best attempt still breaks, with its meter."""
    over = [m for m in report.meters if m.hard and m.used > m.limit]
    if over:
        meter = over[0]
        if meter.name in ("text", "title", "description"):
            name = "" if meter.name == "text" else f" {meter.name}"
            limit = f"the {meter.limit}-character{name} limit"
        else:
            limit = f"the {meter.name} limit of {meter.limit}"
        return (f"no attempt met {limit}: the best ({which}) is {meter.shown}, "
                f"{meter.used - meter.limit:,} over")
    broken = "; ".join(v.message for v in report.violations) or "a hard rule"
    return f"no attempt met every limit: the best ({which}) still breaks: {broken}"


def _named(number: int | None) -> str:
    return "the original draft" if number == 0 else f"attempt {number}"


def _check_length(name: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        raise InvalidInput(f"{name}: must not be empty", {"field": name})
    if len(value) > limit:
        raise InvalidInput(f"{name}: at most {limit:,} characters, not {len(value):,}",
                           {"field": name})
