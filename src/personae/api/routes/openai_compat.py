"""``/v1/chat/completions`` and ``/v1/models``: personas for any OpenAI client.

A thin adapter over :mod:`personae.conversations.gateway` (which documents the
stateless and session-persisted modes). Errors here use OpenAI's shape, which the
official SDKs parse, with our ``code``/``message``/``details`` kept inside it::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ..., "details": {...}}}

Responses are written as pre-encoded bytes: this is a proxy hot path.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse

from personae.api.deps import CurrentPrincipal, get_principal
from personae.api.errors import (
    error_headers,
    openai_error,
    openai_validation_details,
    validation_problem,
)
from personae.api.openai_wire import SESSION_HEADER, parse_chat_request
from personae.api.schemas import (
    CHAT_COMPLETION_BODY,
    CHAT_COMPLETION_RESPONSES,
    ModelList,
    ModelObject,
    openai_responses,
)
from personae.conversations.gateway import ChatGateway, ChatRequest, ChoiceEvent
from personae.errors import InvalidInput, PersonaeError, code_for_status
from personae.limits import load_json
from personae.providers.base import Completion, Finished, TextDelta, Usage
from personae.providers.streams import aclose_stream

__all__ = ["openai_error", "router"]  # openai_error: still importable from here
log = logging.getLogger(__name__)
JSON = "application/json"
_DONE = b"data: [DONE]\n\n"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Completion ids: a random per-process prefix and a counter (no syscall per request).
_ID_PREFIX = f"chatcmpl-{secrets.token_hex(6)}"
_ids = itertools.count(1)


def _completion_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):08x}"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _error_response(status: int, code: str, message: str,
                    details: dict[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None) -> Response:
    # Retry-After on every 503 (an open circuit names its own wait): SDKs honour it.
    return Response(_dumps(openai_error(status, code, message, details)), status,
                    media_type=JSON, headers={**error_headers(status, details),
                                              **(headers or {})})


class OpenAIRoute(APIRoute):
    """Answers errors (auth included) in OpenAI's shape instead of the app-wide one.

    An endpoint taking only the request is called as it is, past FastAPI's parameter
    machinery: no dependency runs for it, neither its own nor an include's (the chat
    route authenticates itself; it is the hot path)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = (self.endpoint if _takes_only_the_request(self.dependant)
                   else super().get_route_handler())

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except PersonaeError as exc:
                if exc.status >= 500:
                    log.warning("chat gateway: %s", exc.message)
                return _error_response(exc.status, exc.code, exc.message, exc.details)
            except RequestValidationError as exc:  # what FastAPI checks before the route
                message, issues = validation_problem(exc)
                return _error_response(400, "invalid_input", message,
                                       openai_validation_details(issues))
            except HTTPException as exc:
                return _error_response(exc.status_code, code_for_status(exc.status_code),
                                       str(exc.detail), headers=exc.headers)
            except Exception:
                log.exception("chat gateway: unhandled error")
                return _error_response(500, "internal_error",
                                       "internal server error; see server log")

        return openai_errors


def _takes_only_the_request(dependant: Dependant) -> bool:
    """The endpoint leaves FastAPI nothing to solve, validate or serialise."""
    return dependant.request_param_name is not None and not (
        dependant.path_params or dependant.query_params or dependant.header_params
        or dependant.cookie_params or dependant.body_params or dependant.dependencies)


router = APIRouter(tags=["openai"], route_class=OpenAIRoute)


def _gateway(request: Request) -> ChatGateway:
    gateway: ChatGateway = request.app.state.runtime.gateway
    return gateway


async def _body(request: Request) -> Any:
    """The JSON body, nested at most MAX_DEPTH levels (a body over its size limit was
    already answered 413 by the body-limit middleware, in this route's error shape)."""
    try:
        return load_json(await request.body(), "the request body")
    except ValueError:
        raise InvalidInput("the request body must be JSON") from None


@router.post("/chat/completions", response_model=None, openapi_extra=CHAT_COMPLETION_BODY,
             responses=CHAT_COMPLETION_RESPONSES)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions with ``model`` naming a persona; ``stream`` for SSE."""
    principal = await get_principal(request)  # called, not injected: the hot path
    gateway = _gateway(request)
    chat = parse_chat_request(await _body(request), request.headers.get(SESSION_HEADER),
                              max_choices=request.app.state.runtime.settings.openai_max_choices)
    if not chat.stream:
        completions = await gateway.complete_choices(principal, chat)
        return Response(_completion_body(chat.model, completions), media_type=JSON)
    events = await gateway.stream_choices(principal, chat)
    try:  # wait for the first event: a failure before any text gets a real status code
        first = await anext(events, None)
    except BaseException:
        await aclose_stream(events)
        raise
    return StreamingResponse(_sse(events, first, chat), media_type="text/event-stream",
                             headers=_SSE_HEADERS)


def _completion_body(model: str, completions: list[Completion]) -> bytes:
    """The ``chat.completion`` object, assembled from pre-encoded parts."""
    choices = b",".join(
        b'{"index":' + str(index).encode() + b',"message":{"role":"assistant","content":'
        + _dumps(completion.text) + b',"refusal":null},"logprobs":null,"finish_reason":'
        + _dumps(completion.finish_reason) + b"}"
        for index, completion in enumerate(completions))
    return b"".join((
        b'{"id":"', _completion_id().encode(), b'","object":"chat.completion","created":',
        str(int(time.time())).encode(), b',"model":', _dumps(model), b',"choices":[',
        choices, b'],"usage":', _usage(_total(c.usage for c in completions)),
        b',"system_fingerprint":null}'))


async def _sse(events: AsyncIterator[ChoiceEvent], first: ChoiceEvent | None,
               chat: ChatRequest) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` events: each choice's role, its content deltas and its
    finish, then the usage (all choices') if asked, then [DONE].

    Chunks ready at the same moment go out in one write (a write costs more than the
    chunk): the roles with the first delta, a finish with what follows it, the end
    (finishes, usage, [DONE]) at once."""
    chunk_id, created = _completion_id(), int(time.time())
    head = (b'data: {"id":"' + chunk_id.encode() + b'","object":"chat.completion.chunk",'
            b'"created":' + str(created).encode() + b',"model":' + _dumps(chat.model))
    ready = [_chunk(head, index, b'{"role":"assistant","content":""}')
             for index in range(chat.n)]
    finished: dict[int, Finished] = {}
    try:
        event = first
        while event is not None:
            index, item = event
            if isinstance(item, TextDelta):
                ready.append(_chunk(head, index, b'{"content":' + _dumps(item.text) + b"}"))
                yield b"".join(ready)
                ready.clear()
            else:  # held until the next write: nothing waits on a finish alone
                finished[index] = item
                ready.append(_chunk(head, index, b"{}", _dumps(item.finish_reason)))
            event = await anext(events, None)
        ready.extend(_ending(head, chat, finished))
    except PersonaeError as exc:  # headers are gone: report in-band, as OpenAI does
        log.warning("chat gateway stream failed: %s", exc.message)
        ready.append(b"data: " + _dumps(openai_error(exc.status, exc.code, exc.message,
                                                     exc.details)) + b"\n\n")
    finally:
        await aclose_stream(events)
    yield b"".join((*ready, _DONE))


def _ending(head: bytes, chat: ChatRequest, finished: dict[int, Finished]) -> list[bytes]:
    """A stop for each choice that ended without a finish, then the usage if asked."""
    chunks = [_chunk(head, index, b"{}", b'"stop"')
              for index in sorted(set(range(chat.n)) - set(finished))]
    if chat.include_usage:
        usage = _total(done.usage for done in finished.values())
        chunks.append(head + b',"choices":[],"usage":' + _usage(usage) + b"}\n\n")
    return chunks


def _chunk(head: bytes, index: int, delta: bytes, finish_reason: bytes = b"null") -> bytes:
    return (head + b',"choices":[{"index":' + str(index).encode() + b',"delta":' + delta
            + b',"finish_reason":' + finish_reason + b"}]}\n\n")


def _total(usages: Iterable[Usage]) -> Usage:
    """The usage of every choice together (each generation processed the prompt)."""
    prompt = completion = 0
    for usage in usages:
        prompt += usage.prompt_tokens
        completion += usage.completion_tokens
    return Usage(prompt, completion)


def _usage(usage: Usage) -> bytes:
    return _dumps({"prompt_tokens": usage.prompt_tokens,
                   "completion_tokens": usage.completion_tokens,
                   "total_tokens": usage.total_tokens})


@router.get("/models", responses={200: {"model": ModelList}, **openai_responses(401)})
async def list_models(request: Request, principal: CurrentPrincipal) -> Response:
    """The personas this key can talk to, as OpenAI models."""
    models = await _gateway(request).models(principal)
    return Response(_dumps({"object": "list", "data": models}), media_type=JSON)


@router.get("/models/{model_id:path}",  # a user's persona id holds a '/'
            responses={200: {"model": ModelObject}, **openai_responses(401, 404, 409)})
async def get_model(model_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    return Response(_dumps(await _gateway(request).model(principal, model_id)),
                    media_type=JSON)
