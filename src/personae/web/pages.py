"""Rendering a dashboard page: who is looking, their CSRF token, the navigation.

Every page route depends on :func:`page_viewer`, which authenticates exactly as the
API does (the same :func:`~personae.api.deps.get_principal`, counted against the same
rate limits): a browser that has not signed in on a server that needs a key is sent
to the sign-in page (see :mod:`personae.web.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from personae import __version__
from personae.api.deps import browser_session, get_principal, runtime_of
from personae.auth.browser import COOKIE_NAME, BrowserSession
from personae.auth.principal import Principal, Role
from personae.runtime import Runtime
from personae.web.capabilities import Capabilities, capabilities_of

templates = Jinja2Templates(directory=str(resources.files("personae.web") / "templates"))


@dataclass(frozen=True)
class Viewer:
    """The user a page is rendered for, and their browser's session."""

    principal: Principal
    session: BrowserSession
    new_cookie: str | None = None  # set on the response: the browser had no session yet

    @property
    def signed_in(self) -> bool:
        """Signed in with a key (not the keyless local admin of a loopback server)."""
        return self.session.key_id is not None

    @property
    def is_admin(self) -> bool:
        return self.principal.role is Role.admin


def ensure_session(request: Request) -> tuple[BrowserSession, str | None]:
    """The browser's session, or a new keyless one (and its cookie) if it has none."""
    session = browser_session(request)
    if session is not None:
        return session, None
    cookie, session = runtime_of(request).browser_sessions.issue(None)
    return session, cookie


async def page_viewer(request: Request) -> Viewer:
    principal = await get_principal(request)
    session, cookie = ensure_session(request)
    return Viewer(principal, session, cookie)


ViewerDep = Annotated[Viewer, Depends(page_viewer)]


def page_runtime(request: Request) -> Runtime:
    return runtime_of(request)


def render(request: Request, viewer: Viewer | None, template: str,
           context: dict[str, Any] | None = None, *, status: int = 200,
           session: tuple[BrowserSession, str | None] | None = None) -> HTMLResponse:
    """The template with what every page needs: ``viewer``, ``csrf``, ``capabilities``
    and ``active`` (the navigation entry to highlight, from ``context``)."""
    runtime = runtime_of(request)
    browser, cookie = session or ((viewer.session, viewer.new_cookie) if viewer
                                  else ensure_session(request))
    values = {"viewer": viewer, "csrf": browser.csrf, "version": __version__,
              "capabilities": capabilities_of(runtime), "active": "", **(context or {})}
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if cookie is not None:
        set_session_cookie(request, response, cookie)
    return response


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    """``HttpOnly`` (no script reads it), ``SameSite=Lax`` (no other site's form or
    script sends it), ``Secure`` when the page came over HTTPS."""
    response.set_cookie(COOKIE_NAME, value,
                        max_age=runtime_of(request).browser_sessions.max_age_seconds,
                        httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


__all__ = ["Capabilities", "Viewer", "ViewerDep", "page_runtime", "page_viewer", "render",
           "set_session_cookie", "templates"]
