"""Plain records of writing samples, as the store keeps them and the service returns them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SampleText:
    """One sample as sent: its text and an optional title (a file name, a post's title)."""

    text: str
    title: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredSample:
    persona_id: str
    position: int
    title: str | None
    text: str
    words: int
    sha256: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {"position": self.position, "title": self.title, "text": self.text,
                "words": self.words, "sha256": self.sha256,
                "created_at": self.created_at.isoformat()}


def samples_digest(texts: Sequence[str]) -> str:
    """One digest over the samples in order (each text's own digest, joined): the
    ``sha256`` of a :class:`~personae.personas.writing_block.SampleSummary`. Titles are
    left out on purpose: renaming a file does not change the voice."""
    joined = "\n".join(hashlib.sha256(text.encode()).hexdigest() for text in texts)
    return hashlib.sha256(joined.encode()).hexdigest()
