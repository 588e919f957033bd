"""OpenAI chat-completions request bodies, read and checked field by field.

Nothing is silently ignored: every field is **honoured** (:data:`HONOURED`), accepted
only at its **neutral** value, the one that asks for nothing (:data:`NEUTRAL_ONLY`,
e.g. ``logprobs: false``), or **refused** with a 400 whose ``param`` names it and
whose code is ``unsupported_parameter``. ``null`` is the same as absent for every
field (LiteLLM sends nulls). Errors name the field as OpenAI does (``param``), so the
official SDKs show it.

Content is bounded as a session's is: each message at most ``MAX_MESSAGE_CHARS``
characters (a session message's bound), at most ``MAX_MESSAGES`` messages and
``MAX_TOTAL_CHARS`` characters in all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from personae.conversations.engine import MAX_MESSAGE_CHARS
from personae.conversations.gateway import ChatRequest
from personae.errors import InvalidInput, UnsupportedParameter, invalid_param
from personae.providers.base import NO_OVERRIDES, ChatMessage, GenerationOverrides, Role

SESSION_HEADER = "x-personae-session"
MAX_STOP_SEQUENCES = 4
MAX_MESSAGES = 1024
MAX_TOTAL_CHARS = 8 * MAX_MESSAGE_CHARS
MAX_USER_CHARS = 256
MAX_USER_NAME_CHARS = 64
INT64 = 2**63
_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user",
                           "assistant": "assistant"}

# What Personae acts on: the persona (model), the messages, how to answer, and the
# caller's generation settings, which win over the persona's.
HONOURED = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "stop", "seed", "response_format", "presence_penalty",
    "frequency_penalty", "n", "metadata", "user"})


@dataclass(frozen=True, slots=True)
class Neutral:
    """A field accepted only at the value that asks for nothing."""

    accepts: Callable[[Any], bool]
    shown: str  # the accepted value, as the error names it
    reason: str  # why any other value cannot be honoured


_NO_TOOLS = "tool calling is not supported by personas"
_NO_LOGPROBS = "token log-probabilities are not available from personas"
_NO_CACHE_HINTS = "prompt caching hints are not supported"
NEUTRAL_ONLY: dict[str, Neutral] = {
    "logprobs": Neutral(lambda v: v is False, "false", _NO_LOGPROBS),
    "top_logprobs": Neutral(lambda v: v == 0 and v is not False, "0", _NO_LOGPROBS),
    "store": Neutral(lambda v: v is False, "false", "completions are not stored for "
                     "later retrieval; keep a conversation in a session instead "
                     "(metadata.session_id)"),
    # Means nothing without tools, which are refused: either value asks for nothing.
    "parallel_tool_calls": Neutral(lambda v: isinstance(v, bool), "true or false", _NO_TOOLS),
    "tool_choice": Neutral(lambda v: v == "none", "'none'", _NO_TOOLS),
    "function_call": Neutral(lambda v: v == "none", "'none'", _NO_TOOLS),
    "tools": Neutral(lambda v: v == [], "[]", _NO_TOOLS),
    "functions": Neutral(lambda v: v == [], "[]", _NO_TOOLS),
    "service_tier": Neutral(lambda v: v in ("auto", "default"), "'auto' or 'default'",
                            "there is one service tier"),
    "logit_bias": Neutral(lambda v: v == {}, "{}", "token biases are not supported"),
    "modalities": Neutral(lambda v: v == ["text"], '["text"]', "personas answer in text only"),
}
# OpenAI fields with no neutral value Personae could honour, and why.
REFUSED: dict[str, str] = {
    "audio": "audio output is not supported; personas answer in text",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not available to personas",
    "reasoning_effort": "the reasoning effort of a persona's model cannot be set",
    "verbosity": "verbosity cannot be set; use max_completion_tokens or ask in a message",
    "prompt_cache_key": _NO_CACHE_HINTS,
    "prompt_cache_retention": _NO_CACHE_HINTS,
    "prompt_cache_options": _NO_CACHE_HINTS,
    "safety_identifier": "not supported; name the end user with 'user'",
    "moderation": "moderation settings are not supported",
}
STREAM_OPTIONS: dict[str, Neutral] = {
    "include_usage": Neutral(lambda v: isinstance(v, bool), "true or false", ""),
    "include_obfuscation": Neutral(lambda v: v is False, "false",
                                   "streams are not obfuscated"),
}


def unsupported(param: str, problem: str) -> UnsupportedParameter:
    return UnsupportedParameter(f"{param}: {problem}", {"param": param})


def parse_chat_request(body: Any, session_header: str | None = None, *,
                       max_choices: int) -> ChatRequest:
    """Parse an OpenAI request body: every field honoured or refused by name.

    ``max_choices`` bounds ``n`` (``PERSONAE_OPENAI_MAX_CHOICES``)."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    fields = {name: value for name, value in body.items() if value is not None}
    _refuse_unsupported(fields)
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_param("model", "name a persona id (GET /v1/models lists them)")
    metadata = _metadata(fields.get("metadata"))
    return ChatRequest(
        model=model, messages=_messages(fields.get("messages")),
        overrides=_overrides(fields),
        session_id=metadata.get("session_id") or session_header or None,
        stream=_flag(fields, "stream"),
        include_usage=_include_usage(fields.get("stream_options")),
        n=_choices(fields, max_choices),
        user_name=_user_name(metadata.get("user_name")))


def _refuse_unsupported(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name in HONOURED:
            continue
        neutral = NEUTRAL_ONLY.get(name)
        if neutral is not None:
            if not neutral.accepts(value):
                raise unsupported(name, f"{neutral.reason} (only {neutral.shown} is accepted)")
        elif name in REFUSED:
            raise unsupported(name, REFUSED[name])
        else:
            raise unsupported(name, f"not a supported chat-completions field{_hint(name)}")


def _hint(name: str) -> str:
    known = sorted(HONOURED | NEUTRAL_ONLY.keys())
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _overrides(fields: dict[str, Any]) -> GenerationOverrides:
    json_schema, json_object = _response_format(fields.get("response_format"))
    overrides = GenerationOverrides(
        temperature=_number(fields, "temperature", 0.0, 2.0),
        max_tokens=_max_tokens(fields),
        top_p=_number(fields, "top_p", 0.0, 1.0, open_low=True),
        stop=_stop(fields.get("stop")),
        seed=_integer(fields, "seed", -INT64, INT64 - 1, "a 64-bit integer"),
        presence_penalty=_number(fields, "presence_penalty", -2.0, 2.0),
        frequency_penalty=_number(fields, "frequency_penalty", -2.0, 2.0),
        json_schema=json_schema, json_object=json_object,
        user=_text(fields.get("user"), "user", MAX_USER_CHARS))
    return NO_OVERRIDES if overrides == NO_OVERRIDES else overrides  # none: nothing to apply


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


def _number(fields: dict[str, Any], name: str, low: float, high: float, *,
            open_low: bool = False) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not (low < value if open_low else low <= value) or value > high):
        bound = f"above {low:g}" if open_low else f"from {low:g}"
        raise invalid_param(name, f"must be a number {bound} to {high:g}, got {value!r}")
    return float(value)


def _integer(fields: dict[str, Any], name: str, low: int, high: int,
             rule: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 20.0 is the integer 20
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_param(name, f"must be {rule}, got {value!r}")
    return value


def _max_tokens(fields: dict[str, Any]) -> int | None:
    name = "max_completion_tokens" if "max_completion_tokens" in fields else "max_tokens"
    return _integer(fields, name, 1, INT64 - 1, "a positive integer")


def _choices(fields: dict[str, Any], max_choices: int) -> int:
    return _integer(fields, "n", 1, max_choices, f"an integer from 1 to {max_choices} (the "
                    "server's PERSONAE_OPENAI_MAX_CHOICES)") or 1


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and s for s in stops)):
        raise invalid_param("stop", f"must be a string or a list of up to {MAX_STOP_SEQUENCES} "
                               "non-empty strings")
    return tuple(stops)


def _response_format(raw: Any) -> tuple[dict[str, Any] | None, bool]:
    """The JSON schema asked for, and whether any JSON object is (``json_object``)."""
    if raw is None:
        return None, False
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind != "json_schema":
        raise invalid_param("response_format.type", "must be 'text', 'json_object' or "
                                                    f"'json_schema', got {kind!r}")
    wrapper = raw.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    if not isinstance(schema, dict):
        raise invalid_param("response_format.json_schema.schema", "must be a JSON schema object")
    return schema, False


def _metadata(raw: Any) -> dict[str, str]:
    """OpenAI's metadata: string values (null is absent). ``session_id`` and
    ``user_name`` mean something here; other keys are the caller's own labels."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid_param("metadata", "must be an object of strings")
    labels = {key: value for key, value in raw.items() if value is not None}
    for key, value in labels.items():
        if not isinstance(value, str):
            raise invalid_param(f"metadata.{key}", f"must be a string, got {value!r}")
    if labels.get("session_id") == "":
        raise invalid_param("metadata.session_id", "must be a session id string")
    return labels


def _user_name(raw: str | None) -> str | None:
    """The caller's display name, for ``{{user}}`` in a persona's text."""
    if raw is None:
        return None
    if not raw.strip() or len(raw) > MAX_USER_NAME_CHARS:
        raise invalid_param("metadata.user_name", f"must be a name of 1 to "
                                                  f"{MAX_USER_NAME_CHARS} characters")
    return raw.strip()


def _text(raw: Any, name: str, limit: int) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > limit:
        raise invalid_param(name, f"must be a string of 1 to {limit} characters")
    return raw


def _include_usage(raw: Any) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, dict):
        raise invalid_param("stream_options", "must be an object")
    for name, value in raw.items():
        option = STREAM_OPTIONS.get(name)
        where = f"stream_options.{name}"
        if value is None:
            continue
        if option is None:
            raise unsupported(where, "not a supported stream option (include_usage is)")
        if not option.accepts(value):
            raise unsupported(where, f"{option.reason} (only {option.shown} is accepted)"
                              if option.reason else f"must be {option.shown}, got {value!r}")
    return raw.get("include_usage") is True


def _flag(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_param(name, f"must be true or false, got {value!r}")
    return bool(value)
