"""One exception tree for the whole package.

Adapters (API, CLI) map these to status codes and exit codes in one place::

    PersonaeError                 500  internal_error
    ├── InvalidInput              400  invalid_input
    │   └── ValidationFailed      422  validation_error   (carries field-path issues)
    ├── AuthenticationRequired    401  unauthenticated
    ├── PermissionDenied          403  forbidden
    ├── NotFound                  404  not_found
    ├── Conflict                  409  conflict
    │   ├── VersionConflict       409  version_conflict   (carries the current version)
    │   └── TurnInProgress        409  turn_in_progress   (one turn at a time per session)
    ├── PreconditionRequired      428  precondition_required
    ├── RateLimited               429  rate_limited       (a budget is spent; retry after)
    ├── QueueUnavailable          503  queue_unavailable  (the job queue cannot be reached)
    ├── ShuttingDown              503  shutting_down      (the server is draining; retry)
    ├── DatabaseUnavailable       503  database_unavailable (the database cannot be reached)
    ├── DatabaseError             500  database_error     (the database refused a statement)
    └── ProviderError             502  provider_error     (names the provider and the cause)
        ├── ProviderUnavailable   503  provider_unavailable  (circuit open, not configured)
        ├── ProviderTimeout       504  provider_timeout
        └── ContextTooLong        400  context_length_exceeded (the prompt does not fit)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import exc as sa_exc

# The error code for an HTTP status raised outside this tree (routing, body limits).
STATUS_CODES: dict[int, str] = {
    400: "invalid_input", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large",
    415: "unsupported_media_type", 422: "validation_error", 428: "precondition_required",
    429: "rate_limited", 500: "internal_error", 502: "provider_error",
    503: "unavailable", 504: "timeout"}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "http_error")


def error_envelope(code: str, message: str,
                   details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error body every adapter sends: ``{"error": {code, message, details}}``."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one field, e.g. ``greetings[0]: must not be empty``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PersonaeError(Exception):
    """Base of every error this package raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return error_envelope(self.code, self.message, self.details)


class InvalidInput(PersonaeError):
    """The request or file could not be understood (bad JSON, not a card, ...)."""

    code = "invalid_input"
    status = 400


def invalid_param(param: str, problem: str) -> InvalidInput:
    """A 400 that names the field, also as ``param`` (OpenAI clients show it)."""
    return InvalidInput(f"{param}: {problem}", {"param": param})


class ValidationFailed(InvalidInput):
    """A persona (or other record) broke the schema; ``issues`` name each field."""

    code = "validation_error"
    status = 422

    def __init__(self, issues: list[FieldIssue], source: str | None = None, *,
                 subject: str = "persona") -> None:
        self.issues = issues
        self.source = source
        self.subject = subject  # what was invalid, for a heading: "invalid samples"
        prefix = f"{source}: " if source else ""
        summary = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(
            f"{prefix}{summary}{more}",
            {"errors": [{"path": i.path, "message": i.message} for i in issues]},
        )


class TooLarge(InvalidInput):
    """An input past its size bound (a file, an upload)."""

    code = "too_large"
    status = 413


class UnsupportedMediaType(InvalidInput):
    """An upload whose declared type is not one the route takes."""

    code = "unsupported_media_type"
    status = 415


class UnsupportedParameter(InvalidInput):
    """A request field Personae cannot honour (OpenAI's ``unsupported_parameter``)."""

    code = "unsupported_parameter"


class AuthenticationRequired(PersonaeError):
    code = "unauthenticated"
    status = 401


class PermissionDenied(PersonaeError):
    code = "forbidden"
    status = 403


class NotFound(PersonaeError):
    code = "not_found"
    status = 404


class Conflict(PersonaeError):
    code = "conflict"
    status = 409


class VersionConflict(Conflict):
    """A write was based on a version that is no longer current."""

    code = "version_conflict"

    def __init__(self, persona_id: str, base_version: int, current_version: int) -> None:
        super().__init__(
            f"persona '{persona_id}' is at version {current_version}; "
            f"your change was based on version {base_version}. "
            "Fetch the current version, reapply your change and retry.",
            {"persona_id": persona_id, "base_version": base_version,
             "current_version": current_version},
        )
        self.current_version = current_version


class PreconditionRequired(PersonaeError):
    code = "precondition_required"
    status = 428


class RateLimited(PersonaeError):
    """A key's (or a keyless address's) budget for this route class, or its daily token
    budget, is spent. ``details``: ``route_class``, ``limit`` (e.g. ``"60/minute"``, or
    the token count), ``remaining`` (0), ``reset_after`` and ``retry_after`` (seconds),
    ``scope`` (``"requests"`` or ``"tokens"``)."""

    code = "rate_limited"
    status = 429


class TurnInProgress(Conflict):
    code = "turn_in_progress"


class QueueUnavailable(PersonaeError):
    """Jobs cannot be queued (Redis is down or not configured); nothing was lost."""

    code = "queue_unavailable"
    status = 503


class ShuttingDown(PersonaeError):
    """The server is stopping and takes no new turns; the same request can be retried
    after ``details.retry_after`` seconds (the restarted server, or another one)."""

    code = "shutting_down"
    status = 503


class DatabaseUnavailable(PersonaeError):
    code = "database_unavailable"
    status = 503


class DatabaseError(PersonaeError):
    code = "database_error"
    status = 500


def from_infrastructure(exc: BaseException) -> PersonaeError | None:
    """The tree's error for a database or Redis failure that reached an edge, else None.

    The one place that knows those libraries' exceptions; messages carry the driver's
    reason, never a URL (which could hold a password) or statement parameters.
    """
    if isinstance(exc, sa_exc.SQLAlchemyError):
        reason = getattr(exc, "orig", None) or type(exc).__name__
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return DatabaseUnavailable(f"the database is unavailable: {reason}")
        return DatabaseError(f"database: {reason}")
    redis_errors = sys.modules.get("redis.exceptions")  # optional: only if Redis is in use
    if redis_errors is not None and isinstance(exc, redis_errors.RedisError):
        return QueueUnavailable(f"redis: {exc}")
    return None


class ProviderError(PersonaeError):
    """A model provider failed; the message names the provider and the cause."""

    code = "provider_error"
    status = 502

    def __init__(self, provider: str, message: str, *, retryable: bool = False,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{provider}: {message}", {"provider": provider, **(details or {})})
        self.provider = provider
        self.retryable = retryable


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    status = 504


class ContextTooLong(ProviderError):
    """The prompt (persona, history and message) does not fit the model's context window.

    The request is at fault, not the provider, so it is a 400 with OpenAI's own code:
    never retried, never sent to a fallback, never counted against the provider's
    circuit breaker. ``details`` hold ``prompt_tokens`` and ``context_window`` when
    known, and ``param`` (``messages``) as OpenAI names it.
    """

    code = "context_length_exceeded"
    status = 400

    @classmethod
    def for_prompt(cls, provider: str, *, prompt_tokens: int | None = None,
                   context_window: int | None = None,
                   details: dict[str, Any] | None = None) -> ContextTooLong:
        """The error with a message that gives the counts, when known, and what to do."""
        counts = {"prompt_tokens": prompt_tokens, "context_window": context_window}
        known = {key: value for key, value in counts.items() if value is not None}
        sizes = [f"{prompt_tokens:,} tokens"] if prompt_tokens is not None else []
        if context_window is not None:
            sizes.append(f"the model takes {context_window:,}")
        message = ("the prompt does not fit the model's context window"
                   + (f" ({', '.join(sizes)})" if sizes else "")
                   + "; shorten the persona's prompt or the conversation, or use a model "
                   "with a larger context")
        return cls(provider, message, details={"param": "messages", **known, **(details or {})})
