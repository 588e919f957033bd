"""A browser's view of the in-process app: a cookie jar, the page's CSRF token, pages.

``WebUser`` signs in through the real sign-in form and then asks for pages (HTML) and
calls the API the way the dashboard's scripts do (cookie plus ``X-CSRF-Token``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from personae.config import Settings
from tests.support.api import Api, serve_app

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')
HTML = {"Accept": "text/html,application/xhtml+xml"}


def csrf_of(html: str) -> str:
    found = CSRF_META.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@dataclass
class WebUser:
    client: httpx.AsyncClient
    csrf: str = ""
    pages: list[str] = field(default_factory=list)

    async def page(self, path: str, *, expect: int = 200) -> httpx.Response:
        """GET a dashboard page as a browser does; keeps the page's CSRF token."""
        response = await self.client.get(path, headers=HTML)
        assert response.status_code == expect, (path, response.status_code,
                                                response.text[:2000])
        if "text/html" in response.headers.get("content-type", ""):
            self.csrf = csrf_of(response.text)
        self.pages.append(path)
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the API like a page's script: the cookie, and the page's CSRF token."""
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def sign_in(self, key: str, next_path: str = "/") -> httpx.Response:
        await self.page("/sign-in")
        response = await self.client.post("/sign-in", data={
            "api_key": key, "csrf_token": self.csrf, "next": next_path}, headers=HTML)
        return response


def web_client(api: Api) -> httpx.AsyncClient:
    """A client of its own (its own cookies) on the same in-process app."""
    transport = api.client._transport  # the ASGI transport serve_app made
    return httpx.AsyncClient(transport=transport, base_url="http://personae")


async def signed_in(api: Api, who: str) -> WebUser:
    """A browser signed in with ``who``'s key (``admin``, ``alice`` or ``bob``)."""
    user = WebUser(web_client(api))
    response = await user.sign_in(api.keys[who])
    assert response.status_code == 303, response.text[:2000]
    await user.page("/")
    return user


async def serve_dashboard(settings: Settings) -> AsyncIterator[Api]:
    """:func:`~tests.support.api.serve_app` with the sample personas loaded."""
    async for harness in serve_app(settings):
        await harness.runtime.load_samples()
        yield harness
