"""The judge assertion: a configured model scores a reply 1-5 against a rubric.

The judge answers with structured output (a JSON schema), checked again here; an
answer that is not a score is a failure with its reason, never a made-up number.
With no judge configured the assertion is skipped, never counted as passed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jsonschema

from personae.errors import PersonaeError
from personae.providers.base import ChatMessage, ModelChoice
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import complete
from personae.quality.assertions import Outcome
from personae.quality.suite import Judge

NO_JUDGE = "no judge provider configured (set PERSONAE_JUDGE_PROVIDER)"
JUDGE_TOKENS = 200
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5},
                   "reason": {"type": "string", "maxLength": 1000}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
INSTRUCTIONS = (
    "You grade one reply of a chat persona against a rubric. Score it from 1 (fails the "
    "rubric) to 5 (fully meets it) and give a one-sentence reason. Answer only with "
    'JSON: {"score": <1-5>, "reason": "..."}.')


def judge_messages(check: Judge, persona_name: str, user_text: str,
                   reply: str) -> list[ChatMessage]:
    return [ChatMessage("system", INSTRUCTIONS),
            ChatMessage("user", f"Persona: {persona_name}\nRubric: {check.rubric}\n\n"
                                f"User message:\n{user_text}\n\nReply to grade:\n{reply}")]


async def run_judge(check: Judge, providers: ProviderRegistry, judge_provider: str | None,
                    persona_name: str, user_text: str, reply: str) -> Outcome:
    """The judge's score against ``min_score``, or a skip when no judge is configured."""
    if not judge_provider:
        return Outcome(None, NO_JUDGE)
    try:
        llm, settings = providers.resolve(ModelChoice(provider=judge_provider,
                                                      temperature=0.0,
                                                      max_tokens=JUDGE_TOKENS))
        settings = replace(settings, json_schema=SCORE_SCHEMA, stream=False)
        answer = await complete(llm, judge_messages(check, persona_name, user_text, reply),
                                settings)
    except PersonaeError as exc:
        return Outcome(False, f"judge failed: {exc.message}")
    return score_outcome(answer.text, check.min_score)


def score_outcome(text: str, min_score: int) -> Outcome:
    """The judge's JSON answer as an outcome; anything but a valid score fails."""
    try:
        data = json.loads(text)
        jsonschema.validate(data, SCORE_SCHEMA)
    except (ValueError, jsonschema.ValidationError) as exc:
        message = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        return Outcome(False, f"judge gave no valid score: {message}")
    score = int(data["score"])
    return Outcome(score >= min_score, f"score {score}/5 (min {min_score}): {data['reason']}")
