"""Which of a synthesis answer's rules and identity say something of the person's own.

A small model fills the answer's slots with whatever is nearest: a bare "never", the
prompt's own measurement lines copied back ("229 words in 4 samples ..."), the same
rule twice or as both always and never, words in a script the person never writes in,
an identity that is only their name. None of that describes a voice, so none of it is
stored or reaches a system prompt: a rule is dropped (its reason kept), an identity
refused (the attempt retried).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from personae.writing.samples import script_of
from personae.writing.text import words

MIN_OWN_WORDS = 3  # a rule or identity says something in at least this many words
ECHO_RUN_WORDS = 5  # this many words in a row shared with the facts: copied, not meant
RULE_WORDS = frozenset({"always", "never"})
_NUMBER = re.compile(r"\d[\d,.]*\d|\d{2,}")  # single digits are too common to tell
_PREFIX = re.compile(r"^\s*(?:always|never)\s*[:\-–—,]?\s*", re.I)


@dataclass(frozen=True, slots=True)
class RuleScreen:
    """What a rule is compared with: the facts the prompt gave, and the scripts of the
    person's samples and onboarding."""

    language: str
    facts: Sequence[str]
    scripts: frozenset[str]
    name: str = ""  # the person's name, as the onboarding gave it

    @classmethod
    def of(cls, language: str, facts: Sequence[str], texts: Iterable[str], *,
           name: str = "") -> RuleScreen:
        return cls(language, facts, frozenset(_scripts(" ".join(texts))), name)

    def rule_problem(self, text: str) -> str | None:
        """Why the rule ``text`` says nothing of the person's own, or None."""
        own = [w for w in words(text, self.language) if w not in RULE_WORDS]
        if len(own) < MIN_OWN_WORDS:
            return f"fewer than {MIN_OWN_WORDS} words of its own"
        if self._echoes(own, _numbers(text)):
            return "repeats the measured facts the prompt gave"
        foreign = sorted(_scripts(text) - self.scripts)
        if foreign:
            return f"written in a script the person does not use ({', '.join(foreign)})"
        return None

    def identity_problem(self, text: str) -> str | None:
        """Why ``text`` is no identity (only the name, or almost nothing), or None."""
        named = set(words(self.name, self.language))
        own = [w for w in words(text, self.language) if w not in named]
        if len(own) < MIN_OWN_WORDS:
            return (f"identity says nothing beyond the name (fewer than {MIN_OWN_WORDS} "
                    "words of its own)")
        return None

    def _echoes(self, own: Sequence[str], numbers: Sequence[str]) -> bool:
        facts = words(" ".join(self.facts), self.language)
        runs = {tuple(facts[i:i + ECHO_RUN_WORDS])
                for i in range(len(facts) - ECHO_RUN_WORDS + 1)}
        if any(tuple(own[i:i + ECHO_RUN_WORDS]) in runs
               for i in range(len(own) - ECHO_RUN_WORDS + 1)):
            return True
        given = set(_numbers(" ".join(self.facts)))
        return bool(numbers) and sum(n in given for n in numbers) * 2 > len(numbers)


def screened(rules: Sequence[tuple[str, str]], screen: RuleScreen
             ) -> tuple[list[int], list[str]]:
    """Of ``rules`` (rule, text), the positions kept and the reasons for the rest: each
    meaningless or echoed rule, a repeat of an earlier one, and both halves of a text
    given as an always and a never rule are dropped."""
    reasons: dict[int, str] = {}
    seen: dict[str, int] = {}
    for position, (rule, text) in enumerate(rules):
        problem = screen.rule_problem(text)
        if problem is not None:
            reasons[position] = problem
            continue
        key = _normalised(text)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = position
        elif rules[earlier][0] == rule:
            reasons[position] = "the same as an earlier rule"
        else:
            reasons[position] = reasons[earlier] = "given as both an always and a never rule"
    notes = [f"dropped rule {rules[p][1].strip()[:60]!r}: {why}"
             for p, why in sorted(reasons.items())]
    return [p for p in range(len(rules)) if p not in reasons], notes


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", _PREFIX.sub("", text).casefold()))


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)]


def _scripts(text: str) -> set[str]:
    return {script_of(ch) for ch in text if ch.isalpha()}
