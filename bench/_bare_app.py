"""Baseline for ``cached_get.py``: the thinnest FastAPI app serving the same persona JSON.

``create_app`` reads two environment variables:

- ``BENCH_BARE_JSON``: path of a JSON file ``{persona_id: body}``, loaded once at startup
  (the bodies are what the real ``GET /v1/personas/{id}`` returned).
- ``BENCH_BARE_MODE``: ``dict`` (return the dict; FastAPI serialises it on every request)
  or ``bytes`` (return a pre-encoded ``Response``, as the real endpoint does).

Run with ``uvicorn _bare_app:create_app --factory --app-dir bench``. ``/health`` exists
only so the benchmark can wait for the server to be ready; the Authorization header the
benchmark sends is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

JSON_MEDIA = "application/json"


def _load() -> dict[str, Any]:
    path = os.environ.get("BENCH_BARE_JSON")
    if not path:
        raise RuntimeError("set BENCH_BARE_JSON to a JSON file {persona_id: body}")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def create_app() -> FastAPI:
    data = _load()
    mode = os.environ.get("BENCH_BARE_MODE", "dict")
    app = FastAPI(title="bare baseline")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if mode == "bytes":
        encoded = {key: _encode(value) for key, value in data.items()}

        @app.get("/v1/personas/{persona_id}")
        async def get_bytes(persona_id: str) -> Response:
            return Response(encoded[persona_id], media_type=JSON_MEDIA)
    elif mode == "dict":

        @app.get("/v1/personas/{persona_id}")
        async def get_dict(persona_id: str) -> dict[str, Any]:
            return data[persona_id]
    else:
        raise RuntimeError(f"BENCH_BARE_MODE must be 'dict' or 'bytes', not {mode!r}")
    return app
