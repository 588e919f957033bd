"""Reading OpenAI chat-completions bodies: the field table, and what each field becomes."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from openai.resources.chat.completions import AsyncCompletions

from personae.api.openai_wire import (
    HONOURED,
    NEUTRAL_ONLY,
    REFUSED,
    parse_chat_request,
)
from personae.errors import InvalidInput, UnsupportedParameter
from personae.providers.base import GenerationOverrides, GenerationSettings

MESSAGES = [{"role": "user", "content": "hi"}]
SDK_ONLY = {"self", "extra_headers", "extra_query", "extra_body", "timeout"}


def _parse(header: str | None = None, **fields: Any) -> Any:
    return parse_chat_request({"model": "tina", "messages": MESSAGES, **fields}, header,
                              max_choices=4)


def test_every_parameter_of_the_official_sdk_has_a_place_in_the_table() -> None:
    """An SDK parameter that fell through to "unknown field" would be refused with a
    misleading message; each is honoured, neutral-only or refused with its reason."""
    sent = set(inspect.signature(AsyncCompletions.create).parameters) - SDK_ONLY
    placed = HONOURED | NEUTRAL_ONLY.keys() | REFUSED.keys()
    assert sorted(sent - placed) == []
    assert not HONOURED & (NEUTRAL_ONLY.keys() | REFUSED.keys())


def test_a_plain_request_asks_for_nothing_special() -> None:
    request = _parse()
    assert request.overrides == GenerationOverrides()
    assert (request.n, request.stream, request.include_usage) == (1, False, False)
    assert (request.session_id, request.user_name) == (None, None)


def test_honoured_fields_become_the_overrides() -> None:
    request = _parse(temperature=0, top_p=1, max_tokens=9, max_completion_tokens=12.0,
                     stop="END", seed=-3, presence_penalty=1, frequency_penalty=-2,
                     user="u-1", response_format={"type": "json_object"}, n=4,
                     stream=True, stream_options={"include_usage": True})
    assert request.overrides == GenerationOverrides(
        temperature=0.0, top_p=1.0, max_tokens=12, stop=("END",), seed=-3,
        presence_penalty=1.0, frequency_penalty=-2.0, user="u-1", json_object=True)
    assert (request.n, request.stream, request.include_usage) == (4, True, True)


def test_null_is_the_same_as_absent_for_every_field() -> None:
    every = HONOURED - {"model", "messages"} | NEUTRAL_ONLY.keys() | REFUSED.keys()
    assert _parse(**dict.fromkeys(every)) == _parse()


def test_metadata_names_the_session_and_the_callers_display_name() -> None:
    request = _parse(metadata={"session_id": "s-1", "user_name": "  Ada  ", "trace": "t"})
    assert (request.session_id, request.user_name) == ("s-1", "Ada")
    assert _parse("s-2").session_id == "s-2"  # the X-Personae-Session header
    assert _parse("s-2", metadata={"session_id": "s-1"}).session_id == "s-1"


def test_a_json_schema_response_format_keeps_its_schema() -> None:
    schema = {"type": "object"}
    request = _parse(response_format={"type": "json_schema",
                                      "json_schema": {"name": "x", "schema": schema}})
    assert (request.overrides.json_schema, request.overrides.json_object) == (schema, False)
    assert _parse(response_format={"type": "text"}).overrides == GenerationOverrides()


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 5}, "n"), ({"n": 0}, "n"), ({"n": True}, "n"),
    ({"seed": 1.5}, "seed"), ({"user": ""}, "user"),
    ({"metadata": {"user_name": " "}}, "metadata.user_name"),
    ({"metadata": {"session_id": ""}}, "metadata.session_id"),
    ({"metadata": ["s-1"]}, "metadata"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"stream_options": "usage"}, "stream_options"),
])
def test_bad_values_are_refused_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _parse(**fields)
    assert caught.value.details["param"] == param
    assert not isinstance(caught.value, UnsupportedParameter)


def test_unsupported_fields_have_their_own_code() -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        _parse(logprobs=True)
    assert (caught.value.code, caught.value.status) == ("unsupported_parameter", 400)
    assert caught.value.details == {"param": "logprobs"}


def test_overrides_win_only_where_set() -> None:
    persona = GenerationSettings(model="m", temperature=0.9, max_tokens=400, top_p=0.9,
                                 stop=("\n\n",), json_schema={"type": "object"})
    assert GenerationOverrides().apply(persona) == persona
    tuned = GenerationOverrides(max_tokens=20, seed=1, json_object=True).apply(persona)
    assert (tuned.max_tokens, tuned.seed, tuned.temperature, tuned.stop) == (
        20, 1, 0.9, ("\n\n",))
    assert (tuned.json_object, tuned.json_schema) == (True, None)
