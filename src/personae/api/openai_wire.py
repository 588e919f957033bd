"""OpenAI chat-completions request bodies, read and checked field by field.

Errors name the field as OpenAI does (``param``), so the official SDKs show it.
Unknown fields are ignored: OpenAI clients send many (``user``, ``seed``, ...) that
have no meaning here. Fields that would silently change the answer's meaning if
ignored (``n`` > 1, ``tools``) are refused. Content is bounded as a session's is: each
message at most ``MAX_MESSAGE_CHARS`` characters (a session message's bound), at most
``MAX_MESSAGES`` messages and ``MAX_TOTAL_CHARS`` characters in all.
"""

from __future__ import annotations

from typing import Any

from personae.conversations.engine import MAX_MESSAGE_CHARS
from personae.conversations.gateway import ChatRequest
from personae.errors import InvalidInput, invalid_param
from personae.providers.base import ChatMessage, Role

SESSION_HEADER = "x-personae-session"
MAX_STOP_SEQUENCES = 4
MAX_MESSAGES = 1024
MAX_TOTAL_CHARS = 8 * MAX_MESSAGE_CHARS
_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user",
                           "assistant": "assistant"}


def parse_chat_request(body: Any, session_header: str | None = None) -> ChatRequest:
    """Parse an OpenAI request body; unknown fields are ignored, as OpenAI clients
    send many (``user``, ``seed``, ...) that have no meaning here."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_param("model", "name a persona id (GET /v1/models lists them)")
    _unsupported(body)
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        model=model, messages=_messages(body.get("messages")),
        temperature=_number(body, "temperature", 0.0, 2.0),
        max_tokens=_max_tokens(body), top_p=_number(body, "top_p", 0.0, 1.0, open_low=True),
        stop=_stop(body.get("stop")), json_schema=_json_schema(body.get("response_format")),
        session_id=_session_id(body.get("metadata")) or session_header or None,
        stream=_flag(body, "stream"),
        include_usage=isinstance(stream_options, dict)
        and stream_options.get("include_usage") is True)


def _messages(raw: Any) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise invalid_param("messages", "must be a non-empty list of {role, content} objects")
    if len(raw) > MAX_MESSAGES:
        raise invalid_param("messages", f"at most {MAX_MESSAGES} messages, got {len(raw)}")
    messages = tuple(_message(index, item) for index, item in enumerate(raw))
    total = sum(len(message.content) for message in messages)
    if total > MAX_TOTAL_CHARS:
        raise invalid_param("messages", f"{total:,} characters of content in all; at most "
                                        f"{MAX_TOTAL_CHARS:,} are accepted")
    return messages


def _message(index: int, raw: Any) -> ChatMessage:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise invalid_param(where, "must be an object with 'role' and 'content'")
    role = raw.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise invalid_param(f"{where}.role",
                            f"must be 'system', 'user' or 'assistant', got {role!r}")
    content = _content(f"{where}.content", raw.get("content"))
    if len(content) > MAX_MESSAGE_CHARS:
        raise invalid_param(f"{where}.content",
                            f"longer than {MAX_MESSAGE_CHARS:,} characters ({len(content):,})")
    return ChatMessage(_ROLES[role], content)


def _content(where: str, raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise invalid_param(where, "must be a string or a list of text parts")
    texts = []
    for index, part in enumerate(raw):
        if not (isinstance(part, dict) and part.get("type") == "text"
                and isinstance(part.get("text"), str)):
            raise invalid_param(f"{where}[{index}]", 'only {"type": "text", "text": ...} parts '
                                                "are supported")
        texts.append(part["text"])
    return "".join(texts)


def _number(body: dict[str, Any], name: str, low: float, high: float, *,
            open_low: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not (low < value if open_low else low <= value) or value > high):
        bound = f"above {low:g}" if open_low else f"from {low:g}"
        raise invalid_param(name, f"must be a number {bound} to {high:g}, got {value!r}")
    return float(value)


def _max_tokens(body: dict[str, Any]) -> int | None:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 20.0 is the integer 20
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_param(name, f"must be a positive integer, got {value!r}")
    return value


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and s for s in stops)):
        raise invalid_param("stop", f"must be a string or a list of up to {MAX_STOP_SEQUENCES} "
                               "non-empty strings")
    return tuple(stops)


def _json_schema(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind != "json_schema":
        raise invalid_param("response_format.type",
                            f"must be 'text' or 'json_schema', got {kind!r}")
    wrapper = raw.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    if not isinstance(schema, dict):
        raise invalid_param("response_format.json_schema.schema", "must be a JSON schema object")
    return schema


def _session_id(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid_param("metadata", "must be an object of strings")
    value = metadata.get("session_id")
    if value is not None and (not isinstance(value, str) or not value):
        raise invalid_param("metadata.session_id", "must be a session id string")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_param(name, f"must be true or false, got {value!r}")
    return bool(value)


def _unsupported(body: dict[str, Any]) -> None:
    """Refuse what would silently change the answer's meaning if ignored."""
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_param("n", "only one choice per request is supported")
    if body.get("tools") or body.get("functions"):
        raise invalid_param("tools", "tool calling is not supported by personas")
