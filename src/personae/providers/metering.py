"""Model tokens spent while answering a request, charged to the caller's daily budget.

The HTTP edge sets :data:`meter` for a request whose caller has a token budget; every
model call made for that request (in its task or tasks it starts) reports its usage
here when the reply finishes, wherever in the core it was made.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class TokenMeter(Protocol):
    def add(self, tokens: int) -> None:
        """Count ``tokens`` against the budget (must not block; may charge later)."""


meter: ContextVar[TokenMeter | None] = ContextVar("personae_token_meter", default=None)


def report_usage(prompt_tokens: int, completion_tokens: int) -> None:
    """A model reply finished: charge its tokens to the current request's caller."""
    current = meter.get()
    tokens = prompt_tokens + completion_tokens
    if current is not None and tokens > 0:
        current.add(tokens)
