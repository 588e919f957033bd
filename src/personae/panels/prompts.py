"""The messages a panel sends: classify a segment, score it as a persona, check character.

Scoring keeps the persona's own system prompt first, so its traits, language and
voice shape the judgement; the task and the rubric follow as a second system note.
"""

from __future__ import annotations

import json

from personae.panels.records import SegmentRow
from personae.panels.rubric import TONES, Rubric
from personae.providers.base import ChatMessage

CLASSIFIER_PROMPT = (
    "You label segments of a transcript. Give the segment's main topic in a few words "
    f"and its tone, one of: {', '.join(TONES)}. Answer with JSON only."
)


def classification_messages(segment: SegmentRow) -> list[ChatMessage]:
    return [ChatMessage("system", CLASSIFIER_PROMPT),
            ChatMessage("user", f"Segment:\n{segment.text}")]


def _scale(rubric: Rubric) -> str:
    lines = [f"Score from {rubric.scale_min} to {rubric.scale_max} (whole numbers)."]
    lines += [f"  {value} = {meaning}" for value, meaning in sorted(rubric.anchors.items())]
    return "\n".join(lines)


def _fields(rubric: Rubric) -> str:
    if not rubric.extra_fields:
        return ""
    described = [f"- {name}: {schema.get('description') or json.dumps(schema)}"
                 for name, schema in rubric.extra_fields.items()]
    return "\nAlso fill in:\n" + "\n".join(described)


def scoring_messages(persona_prompt: str, rubric: Rubric,
                     segment: SegmentRow) -> list[ChatMessage]:
    """The persona's prompt, then the panel task, then the segment to judge."""
    task = (
        "You are on a listening panel. Judge the segment below as yourself: your own "
        "tastes, background and way of speaking. "
        f"{rubric.question}\n{_scale(rubric)}\n"
        f"Give an opinion of one or two sentences in your own voice (at most "
        f"{rubric.opinion_max_chars} characters).{_fields(rubric)}\n"
        "Answer with JSON only: "
        '{"score": <number>, "opinion": "<text>"' + _extra_keys(rubric) + "}."
    )
    context = ""
    if segment.topic or segment.tone:
        context = f" (topic: {segment.topic or 'unknown'}, tone: {segment.tone or 'unknown'})"
    return [ChatMessage("system", persona_prompt), ChatMessage("system", task),
            ChatMessage("user", f"Segment{context}:\n{segment.text}")]


def _extra_keys(rubric: Rubric) -> str:
    return "".join(f', "{name}": ...' for name in rubric.extra_fields)


def adherence_messages(persona_prompt: str, opinion: str) -> list[ChatMessage]:
    """Ask whether an opinion sounds like the persona described by its own prompt."""
    return [
        ChatMessage("system", "You check whether a reply is in character. Answer with "
                              "JSON only: in_character (true/false), score 1-5 (5 = fully "
                              "in character), and a short reason."),
        ChatMessage("user", f"Character description:\n{persona_prompt}\n\n"
                            f"Reply to check:\n{opinion}"),
    ]
