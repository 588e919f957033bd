"""The web dashboard: server-rendered pages over the same services as the API.

Pages are rendered by :mod:`personae.web.pages` from Jinja2 templates; what a page
changes it changes through the JSON API (``/v1``), called by the page's own small
script with the browser's session cookie and the page's CSRF token, so the dashboard
holds no rule of its own.
"""
