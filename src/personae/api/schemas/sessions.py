"""Session bodies and responses, and the events a turn emits.

The events mirror ``conversations.events.event_dict``: REST answers carry them in an
``events`` list, server-sent events send one per ``data:`` line (its ``event:`` is the
``type``), and the WebSocket (not in OpenAPI) sends the same objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from personae.api.schemas.common import (
    NOT_BLANK,
    Body,
    ErrorBody,
    ListPage,
    Public,
    Timestamp,
    error_response,
    error_responses,
    sse_event_schema,
)
from personae.conversations.engine import MAX_MESSAGE_CHARS
from personae.personas.macros import MAX_USER_NAME_CHARS

SessionStatus = Literal["open", "closed", "expired"]
MessageRole = Literal["user", "assistant", "event"]
MessageStatus = Literal["complete", "interrupted", "failed", "streaming"]


class SessionCreate(Body):
    persona_id: str = Field(description="the persona to talk to",
                            json_schema_extra={"minLength": 1})
    meta: dict[str, Any] = Field(default_factory=dict, description="your own labels")
    user_name: str | None = Field(
        default=None, min_length=1, max_length=MAX_USER_NAME_CHARS, pattern=NOT_BLANK,
        description="the name the persona calls you ({{user}} in its card text; "
                    "\"User\" when not given); kept in the session's meta")

    def session_meta(self) -> dict[str, Any]:
        """``meta`` with the user's name in it, as the session keeps it."""
        return {**self.meta, "user_name": self.user_name.strip()} if self.user_name \
            else self.meta


class MessageCreate(Body):
    # Checked by the conversation service (400), so every transport refuses alike.
    content: str = Field(description="what the user says: not blank", json_schema_extra={
        "minLength": 1, "maxLength": MAX_MESSAGE_CHARS, "pattern": NOT_BLANK})
    stream: bool = Field(default=False, strict=True, description="reply as server-sent events")


class SwitchRequest(Body):
    persona_id: str = Field(description="the persona to hand the session to",
                            json_schema_extra={"minLength": 1})


class SessionPublic(Public):
    id: str
    persona_id: str = Field(description="the persona talking now")
    persona_version: int = Field(description="the version the session is pinned to")
    status: SessionStatus = Field(description="only an open session takes messages")
    created_at: Timestamp
    last_active_at: Timestamp
    turns: int = Field(description="replies so far")
    average_response_ms: float | None = Field(description="null before the first reply")
    meta: dict[str, Any] = Field(description="your own labels, as given when opened")


class SessionsPublic(ListPage[SessionPublic]):
    pass


class MessagePublic(Public):
    id: int
    role: MessageRole = Field(description="'event' marks a change such as a persona switch")
    content: str
    persona_id: str = Field(description="the persona that was talking")
    persona_version: int
    status: MessageStatus = Field(description="a reply cut short is 'interrupted' (its "
                                              "partial text kept) or 'failed'; one still "
                                              "being written is 'streaming' (its text so far)")
    created_at: Timestamp
    meta: dict[str, Any] = Field(description="for replies: usage, timing, provider, "
                                             "knowledge used, any error")


class MessagesPublic(ListPage[MessagePublic]):
    """The whole history, oldest first."""


class TokenUsage(Public):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class EventErrorBody(ErrorBody):
    status: int = Field(description="the HTTP status this error would have had")


class MessageEvent(Public):
    """A message was saved: the user's (before the reply) or a greeting."""

    type: Literal["message"]
    message: MessagePublic


class DeltaEvent(Public):
    """More of the reply's text (streams only)."""

    type: Literal["delta"]
    text: str


class DoneEvent(Public):
    """The reply, saved, with its token usage; the last event of a turn."""

    type: Literal["done"]
    message: MessagePublic
    usage: TokenUsage


class ErrorEvent(Public):
    """The turn (or a WebSocket request) failed; the last event of a failed turn."""

    type: Literal["error"]
    error: EventErrorBody
    message: MessagePublic | None = Field(
        default=None, description="the part of the reply saved, if any (not sent when "
                                  "a WebSocket request fails)")


class PersonaSwitchedEvent(Public):
    type: Literal["persona_switched"]
    persona_id: str
    persona_version: int
    name: str = Field(description="the name the persona goes by")
    language: str
    voice: dict[str, Any] = Field(description="provider, voice_id, speed")


class InterruptedEvent(Public):
    """The client stopped the reply (WebSocket only); its saved part, if any."""

    type: Literal["interrupted"]
    message: MessagePublic | None


SessionEvent = Annotated[
    MessageEvent | DeltaEvent | DoneEvent | ErrorEvent | PersonaSwitchedEvent
    | InterruptedEvent, Field(discriminator="type")]


class SessionOpenedPublic(Public):
    session: SessionPublic
    events: list[SessionEvent] = Field(description="the greeting, if the persona has one")


class SwitchedPublic(Public):
    events: list[SessionEvent] = Field(description="persona_switched, the switch noted in "
                                                   "the history, then any greeting")


class ReplyPublic(Public):
    events: list[SessionEvent] = Field(description="what was saved before the reply (the "
                                                   "user's message); deltas are not repeated")
    reply: MessagePublic = Field(description="the assistant's reply, saved")
    usage: TokenUsage


# What a stream's ``data:`` lines hold: the events above (their schemas are components,
# since the JSON answers use them), all but ``interrupted``, which is WebSocket only.
_STREAMED = {"message": MessageEvent, "delta": DeltaEvent, "done": DoneEvent,
             "error": ErrorEvent, "persona_switched": PersonaSwitchedEvent}
_EVENT_SCHEMA = sse_event_schema({
    kind: {"$ref": f"#/components/schemas/{model.__name__}"} for kind, model in _STREAMED.items()})
_PROVIDER_ERRORS = {
    502: "The model provider failed (provider_error); details.message is the part of "
         "the reply saved, if any",
    503: "The model provider cannot be reached now (provider_unavailable)",
    504: "The model provider took too long (provider_timeout)"}


def _reply_responses() -> dict[int | str, dict[str, Any]]:
    """``send`` answers with JSON or a stream, and a failed turn with its failure's
    status (the turn's own error, e.g. 409 turn_in_progress, or the provider's)."""
    errors = error_responses(400, 401, 404, 409, 422)
    default = errors.pop("default")
    return {
        200: {"description": "The reply as JSON or, with stream=true or Accept: "
                             "text/event-stream, as server-sent events: message, delta..., "
                             "then done or error",
              "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}}},
        **errors,
        **{status: error_response(status, description)
           for status, description in _PROVIDER_ERRORS.items()},
        "default": default}


REPLY_RESPONSES = _reply_responses()
