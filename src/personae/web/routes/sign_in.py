"""Signing in to the dashboard with an API key, and signing out.

The key is checked like any API request's, wrong keys counted against the client's
address as the API counts them (past the limit the form answers 429 without checking
the key); the browser then keeps only a signed cookie naming the key's id
(:mod:`personae.auth.browser`). Signing out ends this browser's session; "end all
sign-ins" ends every session of the key. Both forms carry the CSRF token of the
browser's session, so no other site can sign a browser in or out.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from personae.api.deps import authenticate_key, runtime_of
from personae.auth.browser import CSRF_FIELD
from personae.auth.principal import is_api_key_format
from personae.errors import AuthenticationRequired, RateLimited
from personae.web.pages import ensure_session, render, set_session_cookie

router = APIRouter()
MAX_KEY_CHARS = 200


def safe_next(target: str | None) -> str:
    """Only a path of this site (no ``//host`` or ``https://``: no open redirect)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or len(target) > 2000):
        return "/"
    return target


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _form(request, safe_next(next))


def _form(request: Request, target: str, error: str | None = None,
          status: int = 200) -> HTMLResponse:
    settings = runtime_of(request).settings
    return render(request, None, "sign_in.html",
                  {"next": target, "error": error, "keyless": settings.keyless_allowed,
                   "active": "sign-in"}, status=status, session=ensure_session(request))


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, api_key: Annotated[str, Form(max_length=MAX_KEY_CHARS)],
                  csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
                  next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    session, _ = ensure_session(request)
    target = safe_next(next)
    if not session.csrf_matches(csrf_token):
        return _form(request, target, "This form expired: please sign in again.", 403)
    key = api_key.strip()
    if not is_api_key_format(key):
        return _form(request, target, "That is not an API key: keys start with pk_ "
                     "(create one with `personae keys create USER`).", 400)
    runtime = runtime_of(request)
    try:
        principal = await authenticate_key(request, key)
    except AuthenticationRequired:
        return _form(request, target, "That key is not valid (unknown or revoked).", 401)
    except RateLimited as exc:
        wait = int(exc.details["retry_after"])
        page = _form(request, target, "Too many failed sign-ins from this address: try "
                     f"again in {wait} seconds.", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    cookie, _ = runtime.browser_sessions.issue(principal.key_id)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, cookie)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, csrf_token: Annotated[
        str, Form(alias=CSRF_FIELD, max_length=200)] = "",
        everywhere: Annotated[str, Form(max_length=10)] = "") -> Response:
    """This browser's session ends (copies of its cookie too, in every process); with
    ``everywhere``, every session of its key."""
    session, _ = ensure_session(request)
    if not session.csrf_matches(csrf_token):
        return _form(request, "/", "This form expired: sign out again.", 403)
    runtime = runtime_of(request)
    if session.key_id is not None and everywhere:
        await runtime.auth.end_browser_sessions(session.key_id)
    elif session.key_id is not None:
        await runtime.auth.end_browser_session(
            session.key_id, session.session_id, runtime.browser_sessions.expires_at(session))
    cookie, _ = runtime.browser_sessions.issue(None)
    response = RedirectResponse("/sign-in", status_code=303)
    set_session_cookie(request, response, cookie)
    return response
