"""The model's description of a measured voice: identity, tones and rules, with quotes.

Evidence is cited by reference: the prompt numbers the excerpts (``[E1] ...``, whole
sentences of the samples) and the answer's ``evidence`` lists are ids from that
request's enum (:func:`synthesis_schema`; llama.cpp turns it into a grammar, so even
the small embedded model can only write a well-formed answer naming real excerpts).
Code maps each id back to its sentence, which is what is stored as the quote: small
models cannot copy text letter for letter, but stored quotes are always the
person's own words. The answer is checked again here: parsed, validated against the
request's schema (a provider that ignores schemas and cites an unknown id is refused),
and every mapped quote searched for verbatim in the samples (:mod:`.evidence`, the
guard). A claim left without a quote that holds is dropped (``dropped_claims`` counts
them in the accepted answer); so is a rule that says nothing of the person's own
(:mod:`.claim_rules`: too few words, the prompt's facts copied back, a repeat, both
always and never, a foreign script), its reason kept in ``errors``. An answer cut off
at the token limit, left without an identity (or with one that is only the name), or
naming a tone both used and forbidden is refused and asked again, the model told why.
After ``max_attempts`` refusals the synthesis is ``failed`` with the reasons: no
identity, tone or rule is ever filled in by code.

A constraint comes back as a rule (``always`` or ``never``) and its text; the stored
claim reads "Always: ..." or "Never: ..." unless the text already starts that way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from personae.errors import ProviderError
from personae.personas.writing_block import (
    TONES,
    Claim,
    Fingerprint,
    Onboarding,
    Synthesis,
    ToneRange,
)
from personae.providers.base import LLM, GenerationSettings
from personae.providers.streams import complete
from personae.writing.building import check_attempts
from personae.writing.claim_rules import RuleScreen, screened
from personae.writing.evidence import EvidenceIndex
from personae.writing.prompts import (
    SYNTHESIS_ANSWER_TOKENS,
    excerpt_id,
    fingerprint_facts,
    synthesis_excerpts,
    synthesis_messages,
)

IDENTITY_CHARS = 200
CLAIM_CHARS = 160
QUOTES_PER_CLAIM = 3
MAX_CONSTRAINTS = 4
MAX_TONES = 3
TEMPERATURE = 0.3
REASON_CHARS = 160  # one refusal reason as stored: short, no sample text

# Any excerpt id; each request narrows it to an enum of the ids it showed.
_QUOTES = {"type": "array", "minItems": 1, "maxItems": QUOTES_PER_CLAIM,
           "items": {"type": "string", "pattern": "^E[1-9][0-9]*$"}}
_TONE = {"type": "string", "enum": list(TONES)}
_TONES_LIST = {"type": "array", "maxItems": MAX_TONES, "items": _TONE}

SYNTHESIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "identity": {
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1,
                                    "maxLength": IDENTITY_CHARS},
                           "evidence": _QUOTES},
            "required": ["text", "evidence"], "additionalProperties": False},
        "tones": {
            "type": "object",
            "properties": {"default": _TONE, "permitted": _TONES_LIST,
                           "forbidden": _TONES_LIST, "evidence": _QUOTES},
            "required": ["default", "permitted", "forbidden", "evidence"],
            "additionalProperties": False},
        "constraints": {
            "type": "array", "maxItems": MAX_CONSTRAINTS,
            "items": {
                "type": "object",
                "properties": {"rule": {"type": "string", "enum": ["always", "never"]},
                               "text": {"type": "string", "minLength": 1,
                                        "maxLength": CLAIM_CHARS},
                               "evidence": _QUOTES},
                "required": ["rule", "text", "evidence"], "additionalProperties": False}},
    },
    "required": ["identity", "tones", "constraints"],
    "additionalProperties": False,
}


def synthesis_schema(ids: Sequence[str]) -> dict[str, Any]:
    """:data:`SYNTHESIS_SCHEMA` with every ``evidence`` item one of ``ids``."""
    schema = copy.deepcopy(SYNTHESIS_SCHEMA)
    properties = schema["properties"]
    for evidence in (properties["identity"]["properties"]["evidence"],
                     properties["tones"]["properties"]["evidence"],
                     properties["constraints"]["items"]["properties"]["evidence"]):
        evidence["items"] = {"type": "string", "enum": list(ids)}
    return schema


class Refused(Exception):
    """One answer refused; the message is the reason kept in ``Synthesis.errors``."""


@dataclass(frozen=True, slots=True)
class _Accepted:
    identity: Claim
    tones: ToneRange | None
    constraints: list[Claim]
    dropped: int
    notes: list[str] = field(default_factory=list)  # why rules were dropped


async def synthesise(llm: LLM, settings: GenerationSettings, *, fingerprint: Fingerprint,
                     onboarding: Onboarding, samples: Sequence[str],
                     max_attempts: int = 3) -> Synthesis:
    """Ask ``llm`` to describe the voice, up to ``max_attempts`` times (see module doc)."""
    check_attempts(max_attempts)
    excerpts = synthesis_excerpts(fingerprint, onboarding, samples)
    screen = RuleScreen.of(fingerprint.language, fingerprint_facts(fingerprint),
                           [*excerpts, *_onboarding_texts(onboarding)], name=onboarding.name)
    cited = Citations(excerpts, EvidenceIndex(samples), screen)
    asked = synthesis_settings(settings, cited.schema)
    errors: list[str] = []
    refused: str | None = None  # the last refusal, told to the model on the next attempt
    provider, model = llm.name, settings.model
    for attempt in range(1, max_attempts + 1):
        messages = synthesis_messages(fingerprint, onboarding, excerpts, refused=refused)
        try:
            answer = await complete(llm, messages, asked)
            provider, model = answer.provider or provider, answer.model or model
            if answer.finish_reason == "length":
                raise Refused(f"answer cut off at the token limit ({asked.max_tokens})")
            accepted = accept(answer.text, cited)
        except Refused as refusal:
            refused = _short(str(refusal))
            errors.append(f"attempt {attempt}: {refused}")
            continue
        except (ProviderError, TimeoutError) as exc:
            errors.append(f"attempt {attempt}: provider error: {_short(_message(exc))}")
            continue
        errors += [f"attempt {attempt}: {_short(note)}" for note in accepted.notes]
        return Synthesis(status="ok", identity=accepted.identity, tones=accepted.tones,
                         constraints=accepted.constraints, attempts=attempt, errors=errors,
                         dropped_claims=accepted.dropped, provider=provider, model=model)
    return Synthesis(status="failed", attempts=max_attempts, errors=errors,
                     provider=provider, model=model)


def synthesis_settings(settings: GenerationSettings, schema: dict[str, Any]
                       ) -> GenerationSettings:
    """The caller's settings, asking for ``schema``, in one piece, fairly cool."""
    temperature = TEMPERATURE if settings.temperature is None else settings.temperature
    return replace(settings, json_schema=schema, json_object=False, stream=False,
                   temperature=temperature,
                   max_tokens=settings.max_tokens or SYNTHESIS_ANSWER_TOKENS)


class Citations:
    """The excerpts a request showed, by id, and the samples' index that guards them."""

    def __init__(self, excerpts: Sequence[str], index: EvidenceIndex,
                 screen: RuleScreen | None = None) -> None:
        self.screen = screen  # None: claims are not screened for meaning (tests of ids)
        self.excerpts: Mapping[str, str] = {
            excerpt_id(n): text for n, text in enumerate(excerpts, start=1)}
        self.schema = synthesis_schema(list(self.excerpts))
        self.validator = Draft202012Validator(self.schema)
        self.index = index

    def quotes(self, ids: Sequence[str]) -> list[str]:
        """The excerpts ``ids`` name, each once, that are verbatim in the samples."""
        return self.index.holding(self.excerpts[i] for i in dict.fromkeys(ids)
                                  if i in self.excerpts)


def accept(text: str, cited: Citations) -> _Accepted:
    """The answer's claims that hold, or :class:`Refused` saying why none can be used."""
    answer = parse(text, cited.validator)
    dropped = 0
    identity = _claim(answer["identity"]["text"], answer["identity"]["evidence"], cited)
    if identity is None:
        raise Refused("identity has no evidence found verbatim in the samples")
    problem = None if cited.screen is None else cited.screen.identity_problem(identity.text)
    if problem is not None:
        raise Refused(problem)
    tones = _tones(answer["tones"], cited)
    dropped += tones is None
    items = answer["constraints"]
    kept, notes = (screened([(i["rule"], i["text"]) for i in items], cited.screen)
                   if cited.screen is not None else (list(range(len(items))), []))
    dropped += len(items) - len(kept)
    constraints: list[Claim] = []
    for item in (items[position] for position in kept):
        claim = _claim(_rule_text(item["rule"], item["text"]), item["evidence"], cited)
        if claim is None:
            dropped += 1
        else:
            constraints.append(claim)
    return _Accepted(identity, tones, constraints, dropped, notes)


def parse(text: str, validator: Draft202012Validator) -> dict[str, Any]:
    """The answer as JSON that matches the request's schema, or :class:`Refused`."""
    if not text.strip():
        raise Refused("empty answer")
    try:
        answer = json.loads(text, strict=False)  # raw line breaks in strings are fine
    except json.JSONDecodeError as exc:
        raise Refused(f"invalid JSON: {exc.msg} (char {exc.pos})") from exc
    error = best_match(validator.iter_errors(answer))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        raise Refused(f"schema: answer{where} fails {error.validator}")
    if not isinstance(answer, dict):  # pragma: no cover - the schema requires an object
        raise Refused("schema: answer is not an object")
    return answer


def _claim(text: str, ids: list[str], cited: Citations) -> Claim | None:
    evidence = cited.quotes(ids)
    return Claim(text=text, evidence=evidence) if evidence and text.strip() else None


def _tones(answer: dict[str, Any], cited: Citations) -> ToneRange | None:
    default, permitted, forbidden = answer["default"], answer["permitted"], answer["forbidden"]
    clash = sorted(({default} | set(permitted)) & set(forbidden))
    if clash:
        raise Refused(f"tones both used and forbidden: {', '.join(clash)}")
    evidence = cited.quotes(answer["evidence"])
    if not evidence:
        return None
    return ToneRange(default=default, permitted=list(dict.fromkeys(permitted)),
                     forbidden=list(dict.fromkeys(forbidden)), evidence=evidence)


def _onboarding_texts(onboarding: Onboarding) -> list[str]:
    return [onboarding.name, onboarding.audience, *onboarding.goals, *onboarding.topics,
            onboarding.notes]


def _rule_text(rule: str, text: str) -> str:
    text = text.strip()
    if text.casefold().startswith(rule):
        return text
    return f"{rule.capitalize()}: {text}"


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + "..."
