"""Error pages: what the API answers as JSON, a browser on a dashboard page sees as a
page; a page that needs a sign-in sends the browser to the sign-in form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from personae.web.pages import render

TITLES = {400: "Bad request", 401: "Sign-in needed", 403: "Not allowed", 404: "Not found",
          405: "Not allowed here", 409: "Conflict", 413: "Too large", 422: "Not valid",
          429: "Too many requests", 503: "Unavailable"}
MAX_MESSAGE_CHARS = 500
# Control characters (C0, DEL, C1) other than tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown_message(message: str) -> str:
    """What a page may echo of an error's message, which often quotes the request (a
    path, an id): no control characters (each becomes U+FFFD, so a NUL neither cuts
    the text nor hides in it), and at most ``MAX_MESSAGE_CHARS``, ending in an ellipsis
    when cut. Markup in it is escaped by the template."""
    message = _CONTROL.sub("\ufffd", message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return message


def html_error(request: Request, status: int, message: str,
               headers: Mapping[str, str]) -> Response:
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "Error")
    kept = {k: v for k, v in headers.items() if k.lower() != "www-authenticate"}
    response = render(request, None, "error.html", {
        "status": status, "title": title, "message": shown_message(message)}, status=status)
    response.headers.update(kept)
    return response
