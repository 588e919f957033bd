"""What every resource shares: the one error body, list pages, and their OpenAPI docs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

ItemT = TypeVar("ItemT")

# The largest whole number a request may carry where it reaches the database (an
# offset, a version): a 32-bit INTEGER column on every backend. Bounded in the schema,
# a larger one is a 422 naming the bound, never a driver's overflow.
MAX_DB_INT = 2**31 - 1
MAX_OFFSET = MAX_DB_INT
MAX_VERSION = MAX_DB_INT
# A character that is not blank both to Python's ``str.strip`` (which the services use)
# and to JSON Schema's ``\s``: as a ``pattern``, "not empty once stripped".
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"

# Timestamps go out as ``datetime.isoformat()`` text; kept as text so a response model
# passes them through unchanged (pydantic would write UTC as "Z", not "+00:00").
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer, exactly: a number without a fraction (``3`` or ``3.0``),
    never text such as ``"3"`` nor ``true``, which pydantic's lax mode would take."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Public(BaseModel):
    """A response body: a key the model does not know is an error, so a response model
    can never quietly drop part of what a route returns."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable: not_found, version_conflict, ...")
    message: str = Field(description="for people; says what to do about it")
    details: dict[str, Any] = Field(description="more about the error (may be empty), e.g. "
                                                "'errors': [{path, message}] for validation")


class ErrorResponse(BaseModel):
    """Every error, whatever its status: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


class ListPage(Public, Generic[ItemT]):
    data: list[ItemT]
    count: int = Field(description="how many items there are")


class OffsetPage(ListPage[ItemT], Generic[ItemT]):
    """One page of a longer listing; ``count`` is the total, not the page's length."""

    limit: int
    offset: int


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be used (invalid_input)",
    401: "No valid API key (unauthenticated)",
    403: "Not allowed for this caller (forbidden)",
    404: "Not found, or not visible to this caller (not_found)",
    409: "Conflicts with the current state (conflict, version_conflict)",
    413: "The request is too large (too_large)",
    422: "A field is invalid; details.errors names each one (validation_error)",
    428: "Say which version the change is based on: base_version or If-Match "
         "(precondition_required)",
    429: "A rate limit or the daily token budget is spent; Retry-After says when to try "
         "again (rate_limited)",
    503: "A required service cannot be reached; nothing was changed (queue_unavailable, "
         "database_unavailable); Retry-After says when to try again",
}
# Headers an error status always carries (``api.errors.error_headers`` sends them).
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer: send an API key",
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait before trying again",
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}},
          **{f"RateLimit-{name}": {"description": description,
                                   "schema": {"type": "string", "pattern": "^[0-9]+$"}}
             for name, description in (("Limit", "requests allowed in the window"),
                                       ("Remaining", "requests left in the window"),
                                       ("Reset", "seconds until the window resets"))}},
    503: {"Retry-After": {"description": "seconds to wait before trying again",
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}


def error_response(status: int, description: str,
                   model: type[BaseModel] | None = None) -> dict[str, Any]:
    """One documented error status: its body model and the headers it always carries."""
    found: dict[str, Any] = {"model": model or ErrorResponse, "description": description}
    if status in ERROR_HEADERS:
        found["headers"] = ERROR_HEADERS[status]
    return found


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can return, all with the one
    error body, plus ``default`` for an unexpected failure (internal_error, 500). A
    route that authenticates (401) is also rate-limited (429)."""
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    found: dict[int | str, dict[str, Any]] = {
        status: error_response(status, ERROR_DESCRIPTIONS[status]) for status in statuses}
    found["default"] = {"model": ErrorResponse,
                        "description": "Unexpected error (internal_error)"}
    return found


def also_required(*names: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` for a body whose route requires fields the model leaves
    optional (it accepts another way to give them, e.g. a header, or checks them itself
    with its own status): the document then says what a request needs."""

    def mark(schema: dict[str, Any]) -> None:
        schema["required"] = [*schema.get("required", []),
                              *(n for n in names if n not in schema.get("required", []))]
        for name in names:  # and not null: a null says nothing either
            field = schema["properties"][name]
            kinds = [kind for kind in field.pop("anyOf", []) if kind != {"type": "null"}]
            if len(kinds) == 1:
                field.update(kinds[0])

    return mark


SSE_PING_SECONDS = 15  # between keep-alive comments on a quiet server-sent event stream


def sse_event_schema(events: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One server-sent event, as OpenAPI 3.1 describes a stream (by its events): its
    ``event`` name, and its ``data``, JSON text whose schema is the ``contentSchema``."""
    return {"oneOf": [
        {"type": "object", "required": ["event", "data"], "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": schema}}}
        for name, schema in events.items()]}
