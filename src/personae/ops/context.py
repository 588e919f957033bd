"""Who is asking, for the records made while answering: request id, client, caller.

The HTTP edge sets :data:`current` for each request (the CLI sets a ``"cli"`` client),
so the audit log and log lines know where an action came from without every core
method taking it as an argument. Tasks started while a request is handled inherit it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str | None = None
    client: str | None = None  # the caller's address, or "cli"


current: ContextVar[RequestContext | None] = ContextVar("personae_request", default=None)


def request_context() -> RequestContext:
    """The context of the request being handled (an empty one outside any)."""
    return current.get() or _NONE


_NONE = RequestContext()
