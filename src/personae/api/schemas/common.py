"""What every resource shares: the one error body, list pages, and their OpenAPI docs."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

ItemT = TypeVar("ItemT")

# Timestamps go out as ``datetime.isoformat()`` text; kept as text so a response model
# passes them through unchanged (pydantic would write UTC as "Z", not "+00:00").
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


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
    503: "A required service cannot be reached; nothing was changed (queue_unavailable)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can return, all with the one
    error body, plus ``default`` for an unexpected failure (internal_error, 500)."""
    found: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses}
    found["default"] = {"model": ErrorResponse,
                        "description": "Unexpected error (internal_error)"}
    return found
