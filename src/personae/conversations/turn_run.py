"""Book-keeping for one reply while it streams: its text, timing, outcome and metadata."""

from __future__ import annotations

import time
from typing import Any

from personae.conversations.metrics import histogram_marks
from personae.conversations.records import MessageRecord
from personae.errors import PersonaeError
from personae.personas.knowledge import RankedItem
from personae.personas.lore import FiredEntry
from personae.providers.base import NO_OVERRIDES, Finished, GenerationOverrides, Usage


class TurnRun:
    """Book-keeping for one reply while it streams."""

    def __init__(self, overrides: GenerationOverrides = NO_OVERRIDES) -> None:
        self.overrides = overrides  # the caller's settings for this reply
        self.knowledge: list[RankedItem] = []
        self.lore: list[FiredEntry] = []
        self.parts: list[str] = []
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None
        self.finished: Finished | None = None
        self.error: PersonaeError | None = None
        self.cancelled = False
        self.stopped_early = False  # stopped by the server (shutdown, lost claim)
        self.reply: MessageRecord | None = None  # its row, from the start of the turn
        self.flushed = 0  # parts written to the row so far
        self.warnings: list[str] = []  # shown with the reply (e.g. a language the model lacks)

    def delta(self, text: str) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)

    def stopped(self, error: PersonaeError) -> None:
        self.stopped_early = True
        self.error = self.error or error

    def status(self) -> str:
        if self.finished is not None and self.error is None and not self.cancelled:
            return "complete"
        gone = self.cancelled and self.error is None  # the client left: not a failure
        return "interrupted" if self.parts or self.stopped_early or gone else "failed"

    def response_ms(self) -> float | None:
        """Counted for a turn that ended with a reply (a failed turn is not a turn)."""
        if self.error is not None or self.cancelled or self.reply is None:
            return None
        return (time.perf_counter() - self.started) * 1000

    def usage(self) -> dict[str, int]:
        usage = self.finished.usage if self.finished else Usage()
        return {"prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens}

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "knowledge": [{"label": r.label, "index": r.index, "score": round(r.score, 3)}
                          for r in self.knowledge],
            "lore": [fired.meta() for fired in self.lore],
            "usage": self.usage(),
            "time_to_first_token_ms": _rounded(self.first_token_ms),
            "response_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        if self.finished is not None:
            meta["provider"], meta["model"] = self.finished.provider, self.finished.model
            meta["finish_reason"] = self.finished.finish_reason
        if self.warnings:
            meta["warnings"] = self.warnings
        if self.error is not None:
            meta["error"] = {"code": self.error.code, "message": self.error.message}
        return meta

    def metrics(self) -> dict[str, float]:
        usage = self.usage()
        values = {"turns": 1.0, "prompt_tokens": float(usage["prompt_tokens"]),
                  "completion_tokens": float(usage["completion_tokens"]),
                  "response_ms": (time.perf_counter() - self.started) * 1000}
        if self.first_token_ms is not None:
            values["time_to_first_token_ms"] = self.first_token_ms
        if self.stopped_early or (self.cancelled and self.error is None):
            values["interrupted"] = 1.0
        elif self.error is not None:
            values["errors"] = 1.0
        return values | histogram_marks(values)  # latency buckets, for percentiles


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
