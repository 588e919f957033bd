"""Maps every error to one JSON shape: ``{"error": {"code", "message", "details"}}``.

The OpenAI-compatible paths (``/v1/chat/...``, ``/v1/models...``) answer in OpenAI's
own shape instead, which the SDKs parse into their exception classes, for errors
raised before their routes run too (an unknown path, a wrong method).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from personae.errors import PersonaeError, code_for_status, error_envelope, from_infrastructure
from personae.personas.validation import describe, format_path

log = logging.getLogger(__name__)

error_body = error_envelope  # the name routes have used
# Seconds a 503 asks clients to wait when the error does not know (a database or a
# queue that is away, rather than an open circuit with its own reset time).
DEFAULT_RETRY_AFTER_SECONDS = 2
_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"})
OPENAI_PATHS = ("/v1/chat", "/v1/models")
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error"}


# Paths of the API and its machinery; everything else belongs to the dashboard (its
# /static/ files too: a browser sent to a missing one gets the dashboard's 404 page,
# while a script's or a style sheet's fetch, which does not ask for HTML, does not).
API_PREFIXES = ("/v1/", "/health", "/metrics", "/docs", "/openapi.json")


def is_page_request(request: Request) -> bool:
    """A browser asking for a dashboard page (not the API, nor a script's fetch)."""
    return (getattr(request.app.state, "html_error", None) is not None
            and not request.url.path.startswith(API_PREFIXES)
            and "text/html" in request.headers.get("accept", ""))


def is_openai_path(path: str) -> bool:
    """A path of the OpenAI-compatible API, whose errors use OpenAI's shape."""
    return path in OPENAI_PATHS or path.startswith(tuple(f"{p}/" for p in OPENAI_PATHS))


def openai_error(status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAI's error body, with our ``code``/``message``/``details`` kept inside it."""
    kind = _OPENAI_TYPES.get(status) or ("server_error" if status >= 500
                                         else "invalid_request_error")
    if status == 429:  # as OpenAI says it: which budget, and its own code
        kind, code = str((details or {}).get("scope", "requests")), "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind,
                      "param": (details or {}).get("param"), "code": code,
                      "details": details or {}}}


def validation_problem(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """What FastAPI's validation found: one message, and each issue by path."""
    issues = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if loc and loc[0] in {"body", "query", "path", "header"}:
            loc = loc[1:] if loc[0] == "body" else loc
        issues.append({"path": format_path(loc), "message": describe(error)})
    message = "; ".join(f"{i['path']}: {i['message']}" if i["path"] else i["message"]
                        for i in issues[:5])
    return message, issues


def openai_validation_details(issues: list[dict[str, str]]) -> dict[str, Any]:
    """A validation failure as OpenAI reports one: a 400 naming the first field."""
    return {"param": issues[0]["path"] if issues else None, "errors": issues}


def _answer(request: Request, status: int, code: str, message: str,
            details: dict[str, Any] | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
    """The error in the shape its path speaks: OpenAI's, the app-wide envelope, or a
    dashboard page."""
    headers = {**error_headers(status, details), **(headers or {})}
    if is_page_request(request):  # a browser on a dashboard page: an HTML page
        page: Response = request.app.state.html_error(request, status, message, headers)
        return page
    if is_openai_path(request.url.path):
        body = openai_error(status, code, message, details)
    else:
        body = error_body(code, message, details)
    return JSONResponse(body, status, headers=headers)


def error_headers(status: int, details: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The headers an error status promises: a challenge on 401, ``Retry-After`` on 503
    (from ``details.retry_after`` when the error knows, whole seconds, at least 1), and
    on 429 ``Retry-After`` with the spent budget's ``RateLimit-*`` headers."""
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 429:
        return rate_limit_headers(details or {})
    if status != 503:
        return {}
    retry_after = (details or {}).get("retry_after")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        retry_after = DEFAULT_RETRY_AFTER_SECONDS
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


def rate_limit_headers(details: Mapping[str, Any]) -> dict[str, str]:
    """A refusal's headers, from :class:`~personae.errors.RateLimited`'s details."""
    wait = details.get("retry_after")
    seconds = str(max(1, math.ceil(wait))) if isinstance(wait, int | float) else "1"
    limit = details.get("limit_count", details.get("limit"))
    headers = {"Retry-After": seconds, "RateLimit-Remaining": "0", "RateLimit-Reset": seconds}
    if isinstance(limit, int) and not isinstance(limit, bool):
        headers["RateLimit-Limit"] = str(limit)
    return headers


async def _personae_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PersonaeError)
    if exc.status >= 500:
        log.error("internal error: %s", exc.message)
    return _answer(request, exc.status, exc.code, exc.message, exc.details)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, issues = validation_problem(exc)
    if is_openai_path(request.url.path):
        return _answer(request, 400, "invalid_input", message,
                       openai_validation_details(issues))
    return _answer(request, 422, "validation_error", message, {"errors": issues})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # a page (not in the API's document) keeps the router's
        allowed = allowed_methods(request) or sorted(
            m.strip() for m in headers.get("Allow", "").split(",") if m.strip())
        headers["Allow"] = ", ".join(allowed)
    return _answer(request, exc.status_code, code_for_status(exc.status_code),
                   str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the resource at this path accepts, for a 405's ``Allow``.

    The router names only the methods of the first route whose path matched. Here
    every documented path that matches counts, the most specific first: the one with
    the most fixed text (``/personas/{id}/versions`` over ``/personas/{id}``, whose id
    may hold a slash; ``/personas/import`` over ``/personas/{id}``).
    """
    table: list[tuple[re.Pattern[str], int, frozenset[str]]] | None = getattr(
        request.app.state, "allow_table", None)
    if table is None:
        table = request.app.state.allow_table = _allow_table(request.app.openapi())
    path = request.url.path
    found = [(fixed, methods) for pattern, fixed, methods in table if pattern.fullmatch(path)]
    best = max((fixed for fixed, _ in found), default=0)
    return sorted({m for fixed, methods in found if fixed == best for m in methods})


def _allow_table(document: dict[str, Any]) -> list[tuple[re.Pattern[str], int, frozenset[str]]]:
    table = []
    for template, operations in document.get("paths", {}).items():
        parts = re.split(r"\{[^}]+\}", template)
        pattern = re.compile(".+".join(re.escape(part) for part in parts))
        methods = frozenset(method.upper() for method in operations if method.upper() in
                            _HTTP_METHODS)
        table.append((pattern, sum(len(part) for part in parts), methods))
    return table


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error(request, exc)


def unexpected_error(request: Request, exc: Exception) -> Response:
    """The answer to a failure no handler mapped: logged once with its traceback, and a
    500 that shows none of it."""
    mapped = from_infrastructure(exc)
    if mapped is not None:  # the database went away or refused a statement
        log.error("internal error: %s", mapped.message)
        return _answer(request, mapped.status, mapped.code, mapped.message, mapped.details)
    log.exception("unhandled error", exc_info=exc)
    return _answer(request, 500, "internal_error", "internal server error; see server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PersonaeError, _personae_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
