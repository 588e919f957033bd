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
    ├── QueueUnavailable          503  queue_unavailable  (the job queue cannot be reached)
    └── ProviderError             502  provider_error     (names the provider and the cause)
        ├── ProviderUnavailable   503  provider_unavailable  (circuit open, not configured)
        └── ProviderTimeout       504  provider_timeout
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


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
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(PersonaeError):
    """The request or file could not be understood (bad JSON, not a card, ...)."""

    code = "invalid_input"
    status = 400


class ValidationFailed(InvalidInput):
    """A persona (or other record) broke the schema; ``issues`` name each field."""

    code = "validation_error"
    status = 422

    def __init__(self, issues: list[FieldIssue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        prefix = f"{source}: " if source else ""
        summary = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(
            f"{prefix}{summary}{more}",
            {"errors": [{"path": i.path, "message": i.message} for i in issues]},
        )


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


class TurnInProgress(Conflict):
    code = "turn_in_progress"


class QueueUnavailable(PersonaeError):
    """Jobs cannot be queued (Redis is down or not configured); nothing was lost."""

    code = "queue_unavailable"
    status = 503


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
