"""OpenAI's shapes for ``/v1/chat/completions`` and ``/v1/models``: documentation only.

Those routes read the raw body (``api.openai_wire``) and write pre-encoded bytes, so
nothing here runs on a request; these models exist so the OpenAPI document says what
the routes take and send.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personae.api.openai_wire import (
    INT64,
    MAX_MESSAGES,
    MAX_TOTAL_CHARS,
    MAX_USER_CHARS,
    MAX_USER_NAME_CHARS,
)
from personae.api.schemas.common import Public, error_response
from personae.conversations.engine import MAX_MESSAGE_CHARS


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessageParam(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="'developer' is taken as 'system'")
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)] | list[TextPart] = Field(
        description="text, or text parts (joined)")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool | None = Field(default=None, description="end with a usage chunk")
    include_obfuscation: Literal[False] | None = Field(
        default=None, description="streams are not obfuscated")


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    schema_: dict[str, Any] = Field(alias="schema", description="the JSON schema to answer in")


class TextFormat(BaseModel):
    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    """Any JSON object (on the embedded model, a JSON grammar constrains the reply)."""

    type: Literal["json_object"]


class JsonSchemaResponseFormat(BaseModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


class ChatMetadata(BaseModel):
    """Strings: ``session_id`` and ``user_name`` mean something here; any other key is
    your own label, accepted and not used."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str | None] = Field(init=False)
    session_id: str | None = Field(default=None, min_length=1,
                                   description="save the turn into this session")
    user_name: str | None = Field(
        default=None, min_length=1, max_length=MAX_USER_NAME_CHARS, pattern=r"\S",
        description="your display name, for {{user}} in the persona's text (stateless; "
                    "a session has its own)")


NonEmptyText = Annotated[str, Field(min_length=1)]


class ChatCompletionRequest(BaseModel):
    """A chat completion request. Every field listed is honoured, or accepted only at
    the value given (``logprobs: false``, ...); any other field, or value, is a 400
    naming it (code ``unsupported_parameter``). ``null`` is the same as absent."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, description="a persona id (GET /v1/models)")
    messages: list[ChatMessageParam] = Field(
        min_length=1, max_length=MAX_MESSAGES,
        description=f"at most {MAX_TOTAL_CHARS:,} characters of content in all")
    stream: bool | None = Field(default=None, description="answer as server-sent events")
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT64 - 1)
    max_tokens: int | None = Field(default=None, ge=1, le=INT64 - 1,
                                   description="used when max_completion_tokens is absent")
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: NonEmptyText | Annotated[list[NonEmptyText], Field(max_length=4)] | None = None
    seed: int | None = Field(default=None, ge=-INT64, le=INT64 - 1,
                             description="with n > 1, choice i uses seed + i")
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    response_format: TextFormat | JsonObjectFormat | JsonSchemaResponseFormat | None = None
    n: int | None = Field(default=None, ge=1, description=(
        "choices, generated at once; at most PERSONAE_OPENAI_MAX_CHOICES (4 by default); "
        "1 in a session"))
    user: str | None = Field(default=None, min_length=1, max_length=MAX_USER_CHARS,
                             description="the end user's id, passed to OpenAI-compatible "
                                         "upstream providers")
    metadata: ChatMetadata | None = Field(
        default=None, description='{"session_id": ...} saves the turn into that session '
                                  "(or send the X-Personae-Session header)")
    # Accepted only at the value that asks for nothing.
    logprobs: Literal[False] | None = None
    top_logprobs: Literal[0] | None = None
    store: Literal[False] | None = None
    parallel_tool_calls: bool | None = Field(default=None, description="no tools: no effect")
    tool_choice: Literal["none"] | None = None
    function_call: Literal["none"] | None = None
    tools: Annotated[list[Any], Field(max_length=0)] | None = None
    functions: Annotated[list[Any], Field(max_length=0)] | None = None
    service_tier: Literal["auto", "default"] | None = None
    logit_bias: Annotated[dict[str, Any], Field(max_length=0)] | None = None
    modalities: Annotated[list[Literal["text"]], Field(min_length=1, max_length=1)] | None \
        = None


class CompletionUsage(Public):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(Public):
    role: Literal["assistant"]
    content: str
    refusal: None


class Choice(Public):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: str = Field(description="stop, length, ... as the model reported")


class ChatCompletion(Public):
    id: str
    object: Literal["chat.completion"]
    created: int = Field(description="Unix time, seconds")
    model: str = Field(description="the persona id asked for")
    choices: list[Choice] = Field(description="n of them (1 unless asked), by index")
    usage: CompletionUsage
    system_fingerprint: None


class ChunkDelta(Public):
    role: Literal["assistant"] | None = Field(default=None, description="first chunk only")
    content: str | None = None


class ChunkChoice(Public):
    index: int
    delta: ChunkDelta = Field(description="empty in the chunk with the finish_reason")
    finish_reason: str | None


class ChatCompletionChunk(Public):
    """One ``data:`` line of a stream, for one choice (``index``). Once every choice has
    had its chunk with a ``finish_reason`` comes, if ``stream_options.include_usage``,
    one with no choices and the usage of them all; then ``data: [DONE]``. A failure
    mid-stream is sent in-band as an :class:`OpenAIError`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = Field(default=None, description="the last chunk only")


class ModelObject(Public):
    """A persona the caller can talk to, as an OpenAI model."""

    id: str = Field(description="the persona id")
    object: Literal["model"]
    created: int = Field(description="when the persona last changed, Unix time")
    owned_by: str = Field(description="the owner's user id, or 'global'")


class ModelList(Public):
    object: Literal["list"]
    data: list[ModelObject]


class OpenAIErrorBody(Public):
    message: str
    type: Literal["invalid_request_error", "authentication_error", "permission_error",
                  "server_error"]
    param: str | None = Field(description="the request field at fault, if one is")
    code: str = Field(description="ours: not_found, unsupported_parameter, ...")
    details: dict[str, Any]


class OpenAIError(Public):
    """Every error of these routes, in the shape OpenAI's SDKs parse."""

    error: OpenAIErrorBody


OPENAI_ERRORS: dict[int, str] = {
    400: "The request could not be used; param names the field (invalid_input, or "
         "unsupported_parameter for a field that cannot be honoured)",
    401: "No valid API key (unauthenticated)",
    404: "No such persona, or not readable by this key; or no such session (not_found)",
    409: "The persona is archived or its prompt fails to render, or the session is "
         "already answering (conflict, turn_in_progress)",
    413: "The request body is too large (too_large)",
    502: "The model provider failed (provider_error)",
    503: "The model provider cannot be reached now (provider_unavailable)",
    504: "The model provider took too long (provider_timeout)",
}


def openai_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these routes' errors, plus ``default`` (internal_error)."""
    found: dict[int | str, dict[str, Any]] = {
        status: error_response(status, OPENAI_ERRORS[status], OpenAIError)
        for status in statuses}
    found["default"] = {"model": OpenAIError, "description": "Unexpected error (internal_error)"}
    return found


def inline_schema(model: type[BaseModel],
                  mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` written in place: for parts of the
    document FastAPI does not collect components for (``openapi_extra``, extra content)."""
    schema = model.model_json_schema(mode=mode)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        found = {key: resolve(value) for key, value in node.items() if key != "$ref"}
        if "$ref" in node:  # keys beside the reference (a description) win
            return {**resolve(defs[node["$ref"].rsplit("/", 1)[1]]), **found}
        return found

    resolved: dict[str, Any] = resolve(schema)
    return resolved


# The route reads its body itself, so the request body is given as ``openapi_extra``.
CHAT_COMPLETION_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": inline_schema(ChatCompletionRequest, "validation")}}}}
# Each event of a stream: no event name (so "message"), its data a chunk, an error sent
# in-band, or the closing "[DONE]".
_CHUNKS = {"schema": {"type": "object", "required": ["data"], "properties": {
    "event": {"const": "message"},
    "data": {"anyOf": [
        {"const": "[DONE]"},
        {"type": "string", "contentMediaType": "application/json", "contentSchema": {
            "oneOf": [inline_schema(ChatCompletionChunk, "serialization"),
                      inline_schema(OpenAIError, "serialization")]}}]}}}}
CHAT_COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ChatCompletion,
          "description": "The completion or, with stream=true, chunks as server-sent events",
          "content": {"text/event-stream": _CHUNKS}},
    **openai_responses(400, 401, 404, 409, 413, 502, 503, 504)}
