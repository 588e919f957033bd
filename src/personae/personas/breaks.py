"""What shows a model stepped out of its persona: assistant boilerplate, refusals, and
greeting the persona by name as if it were the person being answered.

Shared by every capability that checks a persona's text (quality assertions on chat
replies, the writing loops on drafts), so there is one list to keep up to date.
"""

from __future__ import annotations

import re

# A chat reply naming any of these has dropped the persona.
PERSONA_BREAK_PHRASES = ("as an ai", "as a language model", "i am an ai", "i'm an ai",
                         "language model", "i cannot roleplay")
# The model speaking of itself as one; "language model" alone may be a post's topic.
SELF_AS_MODEL_PHRASES = tuple(p for p in PERSONA_BREAK_PHRASES if p != "language model")
# A model declining the task instead of doing it.
REFUSAL_PHRASES = ("i'm sorry, but i can't", "i'm sorry, but i cannot",
                   "i am sorry, but i can't", "i am sorry, but i cannot",
                   "i can't assist with", "i cannot assist with", "i'm unable to assist",
                   "i can't help with that", "i cannot help with that",
                   "i can't fulfill", "i cannot fulfill", "i can't comply", "i cannot comply",
                   "i don't have the ability to", "i do not have the ability to",
                   "i'm not able to provide", "i am not able to provide",
                   "i can't engage in", "i cannot engage in")
GREETINGS = ("hi", "hello", "hey", "dear", "greetings")
_WORD = re.compile(r"\w+")


def folded(text: str) -> str:
    """Casefolded, with typographic apostrophes as plain ones."""
    return text.casefold().replace("\u2019", "'").replace("\u2018", "'")


def phrases_in(text: str, phrases: tuple[str, ...]) -> list[str]:
    """Which of ``phrases`` (casefolded) ``text`` contains, in their order."""
    found = folded(text)
    return [phrase for phrase in phrases if phrase in found]


def greets_by_name(text: str, name: str) -> bool:
    """Whether ``text`` opens by greeting ``name`` ("Hi Obama A!"): the persona taken
    for the person it is talking to."""
    words = _WORD.findall(folded(text)[:200])
    own = set(_WORD.findall(folded(name)))
    return len(words) >= 2 and words[0] in GREETINGS and words[1] in own


def why_out_of_character(text: str, name: str) -> str | None:
    """Why ``text`` cannot be the persona's own words (None: nothing found)."""
    refused = phrases_in(text, REFUSAL_PHRASES)
    if refused:
        return f"the model refused: {refused[0]!r}"
    as_model = phrases_in(text, SELF_AS_MODEL_PHRASES)
    if as_model:
        return f"the model spoke as an AI: {as_model[0]!r}"
    if greets_by_name(text, name):
        return f"the model greeted the persona by name ({name!r}) instead of writing as them"
    return None
