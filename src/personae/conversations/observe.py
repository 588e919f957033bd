"""What a finished turn reports to whoever watches turns (metrics, logs).

The conversation engine knows nothing of Prometheus or log formats: it hands each
observer one :class:`TurnReport` per finished turn, ids, outcome, timings and token
counts, never the text. Observers are called inline, so they must be cheap and must
not raise; one that does is logged and skipped, and the turn is not affected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnReport:
    session_id: str
    persona_id: str
    persona_version: int
    provider: str | None  # the provider that answered, or the one that failed
    model: str | None
    status: str  # complete | interrupted | failed
    time_to_first_token_ms: float | None
    response_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    error_code: str | None


class TurnObserver(Protocol):
    def turn_finished(self, report: TurnReport) -> None: ...


def tell_observers(observers: Iterable[TurnObserver], report: TurnReport) -> None:
    """Give ``report`` to each observer; a failing observer is logged, never raised."""
    for observer in observers:
        try:
            observer.turn_finished(report)
        except Exception:
            log.exception("turn observer %r failed", observer)
