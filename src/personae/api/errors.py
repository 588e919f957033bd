"""Maps every error to one JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from personae.errors import PersonaeError, code_for_status, error_envelope, from_infrastructure
from personae.personas.validation import describe, format_path

log = logging.getLogger(__name__)

error_body = error_envelope  # the name routes have used


async def _personae_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PersonaeError)
    if exc.status >= 500:
        log.error("internal error: %s", exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if loc and loc[0] in {"body", "query", "path", "header"}:
            loc = loc[1:] if loc[0] == "body" else loc
        issues.append({"path": format_path(loc), "message": describe(error)})
    message = "; ".join(f"{i['path']}: {i['message']}" if i["path"] else i["message"]
                        for i in issues[:5])
    return JSONResponse(error_body("validation_error", message, {"errors": issues}), 422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(error_body(code_for_status(exc.status_code), str(exc.detail)),
                        exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    mapped = from_infrastructure(exc)
    if mapped is not None:
        return await _personae_error(request, mapped)
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error; see server log"),
                        500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PersonaeError, _personae_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
