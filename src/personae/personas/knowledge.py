"""Ground replies in a persona's own content: rank its knowledge items per message (BM25)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from functools import lru_cache

from rank_bm25 import BM25Plus
from stop_words import StopWordError, get_stop_words

from personae.personas.schema import KnowledgeItem

_WORD = re.compile(r"\w+", re.UNICODE)
RELATIVE_FLOOR = 0.75


@lru_cache(maxsize=64)
def stop_words(language: str) -> frozenset[str]:
    """Common words of the persona's language and of English (users mix them)."""
    words: set[str] = set(get_stop_words("en"))
    with contextlib.suppress(StopWordError):  # no list for this language: English only
        words.update(get_stop_words(language.split("-")[0]))
    return frozenset(w.lower() for w in words)


def tokenize(text: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in ignore]


@dataclass(frozen=True, slots=True)
class RankedItem:
    index: int
    item: KnowledgeItem
    score: float

    @property
    def label(self) -> str:
        return self.item.id or self.item.title or f"item-{self.index}"


class KnowledgeIndex:
    """BM25 over one persona version's plain knowledge items (built once, versions are
    immutable). Lore entries (items with keys, or constant) are left out: they fire
    on their keys instead (:mod:`personae.personas.lore`)."""

    def __init__(self, items: list[KnowledgeItem], language: str = "en") -> None:
        self._positions = [index for index, item in enumerate(items) if not item.is_lore]
        self.items = [items[index] for index in self._positions]
        self.ignore = stop_words(language)
        corpus = [tokenize(" ".join(filter(None, [i.title, i.content, " ".join(i.tags)])),
                           self.ignore) for i in self.items]
        self._words = [set(doc) for doc in corpus]
        # BM25+ keeps IDF positive, which matters for personas with only a few items.
        self._bm25 = BM25Plus(corpus) if self.items else None

    def top(self, query: str, k: int = 3) -> list[RankedItem]:
        words = tokenize(query, self.ignore)
        if self._bm25 is None or not words:
            return []
        scores = self._bm25.get_scores(words)
        asked = set(words)
        matching = [i for i in range(len(self.items)) if self._words[i] & asked]
        if not matching:
            return []
        ranked = sorted(matching, key=lambda i: (-scores[i], i))
        # Items far below the best match share only common words with the query.
        floor = RELATIVE_FLOOR * float(scores[ranked[0]])
        return [RankedItem(self._positions[i], self.items[i], float(scores[i]))
                for i in ranked[:k] if scores[i] >= floor]
