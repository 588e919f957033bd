"""Error pages: what the API answers as JSON, a browser on a dashboard page sees as a
page; a page that needs a sign-in sends the browser to the sign-in form."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from personae.web.pages import render

TITLES = {400: "Bad request", 401: "Sign-in needed", 403: "Not allowed", 404: "Not found",
          405: "Not allowed here", 409: "Conflict", 413: "Too large", 422: "Not valid",
          429: "Too many requests", 503: "Unavailable"}


def html_error(request: Request, status: int, message: str,
               headers: Mapping[str, str]) -> Response:
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "Error")
    kept = {k: v for k, v in headers.items() if k.lower() != "www-authenticate"}
    response = render(request, None, "error.html",
                      {"status": status, "title": title, "message": message}, status=status)
    response.headers.update(kept)
    return response
