"""Lore entries: which of a persona's lorebook entries go into the prompt for a turn.

The rules are SillyTavern's World Info (and the Character Card ``character_book``):

* a disabled entry never fires; a ``constant`` one always does;
* a keyed entry fires when one of its ``keys`` appears in the recent messages (the
  last ``scan_depth`` of them, the new user message included; 0 scans nothing, so
  only constant entries fire) and, when ``selective`` with secondary keys, its
  ``secondary_logic`` holds over them;
* keys match as case-insensitive substrings unless ``case_sensitive``; ``whole_words``
  matches at word boundaries; a key written ``/pattern/flags`` is a regular expression,
  run with a per-match timeout (a timeout or a bad pattern is no match, logged once,
  and the key is not tried again for this persona version);
* with ``recursive_scanning``, the text of fired entries is scanned too (bounded passes);
* the fired entries are kept, highest ``priority`` first (then lower ``order``, then
  their place in the persona), while they fit the lorebook's ``token_budget``; an entry
  that does not fit is left out and smaller ones after it may still fit. They are
  placed ``before_char`` entries first, then ``after_char``, each in ``order``.

A :class:`Lorebook` is compiled once per prepared persona version (patterns compiled,
``{{char}}`` substituted) and shared by every turn.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import regex

from personae.personas.macros import substitute
from personae.personas.schema import (
    KnowledgeItem,
    LorebookSettings,
    compile_regex_key,
    regex_key,
)

logger = logging.getLogger(__name__)

CountTokens = Callable[[str], int]
REGEX_TIMEOUT_SECONDS = 0.05  # one regular-expression key against the scanned text
# A whole scan (every key of every entry, all passes) stops at this bound: a persona
# with thousands of slow keys costs a turn this much at most, never minutes.
MAX_SCAN_SECONDS = 0.5
MAX_SCAN_CHARS = 64_000  # the newest text scanned; older text is not searched
MAX_RECURSION_PASSES = 5
Why = Literal["constant", "key", "recursion"]


@dataclass(slots=True)
class _Key:
    """One key, ready to match: a case-folded substring, a word pattern, or a regex."""

    text: str
    plain: str | None = None
    pattern: re.Pattern[str] | regex.Pattern[str] | None = None
    broken: bool = False  # a regex that failed or timed out: never tried again

    def matches(self, scanned: _Scanned, case_sensitive: bool) -> bool:
        if self.broken or scanned.out_of_time():
            return False
        if self.plain is not None:
            return self.plain in (scanned.text if case_sensitive else scanned.folded)
        assert self.pattern is not None
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.search(scanned.text) is not None
        allowed = min(REGEX_TIMEOUT_SECONDS, scanned.deadline - time.monotonic())
        try:
            return self.pattern.search(scanned.text, timeout=allowed) is not None
        except TimeoutError:
            if allowed < REGEX_TIMEOUT_SECONDS:
                return False  # the scan ran out of time, not this key
            self.broken = True
            logger.warning("lore key %r took longer than %s s; it is ignored from now on",
                           self.text, REGEX_TIMEOUT_SECONDS)
            return False


@dataclass(frozen=True, slots=True)
class _Scanned:
    text: str
    folded: str
    deadline: float  # time.monotonic() past which no key is tried

    @classmethod
    def of(cls, parts: Iterable[str], deadline: float) -> _Scanned:
        text = "\n".join(parts)[-MAX_SCAN_CHARS:]
        return cls(text, text.casefold(), deadline)

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


def _compile_key(text: str, item: KnowledgeItem, char: str) -> _Key:
    text = substitute(text, char=char)
    if regex_key(text) is not None:
        pattern = compile_regex_key(text)
        if pattern is None:
            logger.warning("lore key %r is not a valid regular expression; it never matches",
                           text)
            return _Key(text, broken=True)
        return _Key(text, pattern=pattern)
    if item.whole_words:
        flags = 0 if item.case_sensitive else re.IGNORECASE
        return _Key(text, pattern=re.compile(rf"(?<!\w){re.escape(text)}(?!\w)", flags))
    return _Key(text, plain=text if item.case_sensitive else text.casefold())


@dataclass(frozen=True, slots=True)
class LoreEntry:
    """One enabled lore entry, compiled."""

    index: int  # its place in the persona's knowledge list
    item: KnowledgeItem
    content: str  # ``{{char}}`` substituted; ``{{user}}`` is substituted per turn
    keys: tuple[_Key, ...]
    secondary: tuple[_Key, ...]

    @property
    def label(self) -> str:
        return self.item.id or self.item.title or f"item-{self.index}"

    def fires(self, scanned: _Scanned) -> str | None:
        """The key that fires this entry on ``scanned``, if any."""
        case = self.item.case_sensitive
        key = next((k for k in self.keys if k.matches(scanned, case)), None)
        if key is None:
            return None
        if not (self.item.selective and self.secondary):
            return key.text
        logic = self.item.secondary_logic
        if logic in ("and_any", "not_any"):
            hit = any(k.matches(scanned, case) for k in self.secondary)
            return key.text if hit == (logic == "and_any") else None
        every = all(k.matches(scanned, case) for k in self.secondary)
        return key.text if every == (logic == "and_all") else None


@dataclass(frozen=True, slots=True)
class FiredEntry:
    """An entry in this turn's prompt, and why it is there."""

    entry: LoreEntry
    why: Why
    key: str | None = None
    text: str = ""  # its content as the model sees it (``{{user}}`` substituted)

    def meta(self) -> dict[str, object]:
        found: dict[str, object] = {"label": self.entry.label, "index": self.entry.index,
                                    "why": self.why}
        if self.key is not None:
            found["key"] = self.key
        return found


@dataclass
class Lorebook:
    """A persona version's lore entries, compiled; :meth:`select` per turn."""

    entries: list[LoreEntry] = field(default_factory=list)
    settings: LorebookSettings = field(default_factory=LorebookSettings)

    @classmethod
    def compile(cls, items: Sequence[KnowledgeItem], settings: LorebookSettings,
                char: str) -> Lorebook:
        entries = [
            LoreEntry(index, item, substitute(item.content, char=char),
                      tuple(_compile_key(k, item, char) for k in item.keys),
                      tuple(_compile_key(k, item, char) for k in item.secondary_keys))
            for index, item in enumerate(items) if item.is_lore and item.enabled]
        return cls(entries, settings)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def select(self, messages: Sequence[str], count: CountTokens,
               user: str) -> list[FiredEntry]:
        """The entries for a turn whose conversation so far is ``messages`` (oldest
        first, the new user message last), within the token budget, in prompt order."""
        return self.fit(self.fire(messages), count, user)

    def fit(self, fired: Sequence[FiredEntry], count: CountTokens,
            user: str) -> list[FiredEntry]:
        """The fired entries that fit the token budget, in prompt order."""
        kept = _within_budget(fired, count, user, self.settings.token_budget)
        return sorted(kept, key=lambda f: (f.entry.item.position != "before_char",
                                           f.entry.item.order, f.entry.index))

    def fire(self, messages: Sequence[str]) -> list[FiredEntry]:
        """Every entry that fires on ``messages``, before the budget (the part that
        runs regular expressions: callers on an event loop run it in a thread)."""
        if not self.entries:
            return []
        depth = self.settings.scan_depth
        recent = list(messages[-depth:]) if depth else []
        fired = [FiredEntry(e, "constant") for e in self.entries if e.item.constant]
        waiting = [e for e in self.entries if not e.item.constant]
        deadline = time.monotonic() + MAX_SCAN_SECONDS
        scanned = _Scanned.of(recent, deadline)
        why: Why = "key"
        passes = MAX_RECURSION_PASSES if self.settings.recursive_scanning else 1
        for _ in range(passes):
            if not waiting or not scanned.text or scanned.out_of_time():
                break
            found = [(e, key) for e in waiting if (key := e.fires(scanned)) is not None]
            if not found:
                break
            fired.extend(FiredEntry(e, why, key) for e, key in found)
            done = {id(e) for e, _ in found}
            waiting = [e for e in waiting if id(e) not in done]
            scanned = _Scanned.of([scanned.text, *(e.content for e, _ in found)], deadline)
            why = "recursion"
        if scanned.out_of_time():
            logger.warning("lore scan stopped after %s s; entries not reached did not fire",
                           MAX_SCAN_SECONDS)
        return fired


def _within_budget(fired: Sequence[FiredEntry], count: CountTokens, user: str,
                   budget: int) -> list[FiredEntry]:
    ranked = sorted(fired, key=lambda f: (-f.entry.item.priority, f.entry.item.order,
                                          f.entry.index))
    kept: list[FiredEntry] = []
    spent = 0
    for candidate in ranked:
        text = substitute(candidate.entry.content, user=user)
        cost = count(text)
        if spent + cost > budget:
            continue
        spent += cost
        kept.append(FiredEntry(candidate.entry, candidate.why, candidate.key, text))
    return kept


def lore_block(fired: Sequence[FiredEntry]) -> str:
    """The fired entries as prompt text: their contents, one after another, as
    SillyTavern inserts World Info (no headings of its own)."""
    return "\n".join(f.text for f in fired if f.text.strip())
