"""Route classes: which budget a request spends, by method and route template.

Kept apart from the limiter so the table is easy to read (and to pin in a test): a new
model-calling route must be named here, or it would count as a registry write or as
"other".
"""

from __future__ import annotations

from enum import StrEnum


class RouteClass(StrEnum):
    chat = "chat"
    audio = "audio"
    jobs = "jobs"
    writes = "writes"
    other = "other"
    exempt = "exempt"  # never limited: health, metrics, the API documents


# Route classes whose requests call a model, so the daily token budget is checked first.
MODEL_CLASSES = frozenset({RouteClass.chat, RouteClass.audio, RouteClass.jobs})

_EXEMPT = ("/health", "/metrics", "/docs", "/docs-assets", "/openapi.json")
_REGISTRY = ("/v1/personas", "/v1/users", "/v1/keys", "/v1/me/keys")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes that start model (or speech) work; every other write under the registry's
# prefixes is a registry write, and anything else is "other".
_NAMED: dict[tuple[str, str], RouteClass] = {
    ("POST", "/v1/chat/completions"): RouteClass.chat,
    ("POST", "/v1/sessions/{session_id}/messages"): RouteClass.chat,
    ("POST", "/v1/sessions/{session_id}/audio"): RouteClass.audio,
    ("POST", "/v1/audio/transcriptions"): RouteClass.audio,
    ("POST", "/v1/audio/speech"): RouteClass.audio,
    ("POST", "/v1/evaluations"): RouteClass.jobs,
    ("POST", "/v1/evaluations/{evaluation_id}/rerun"): RouteClass.jobs,
    ("POST", "/v1/evaluations/{evaluation_id}/resume"): RouteClass.jobs,
    ("POST", "/v1/personas/{persona_id}/tests/run"): RouteClass.jobs,
    ("POST", "/v1/writing/personas"): RouteClass.jobs,
    ("PUT", "/v1/writing/personas/{persona_id}/samples"): RouteClass.jobs,
    ("POST", "/v1/writing/personas/{persona_id}/regenerate"): RouteClass.jobs,
    ("POST", "/v1/writing/{platform}/optimize"): RouteClass.jobs,
    ("POST", "/v1/writing/{platform}/draft"): RouteClass.jobs,
}
_classes: dict[tuple[str, str], RouteClass] = {}
_MAX_CLASSIFIED = 4096  # route templates are few; anything past this is not kept


def classify(method: str, route_template: str) -> RouteClass:
    """The budget a request counts against, by method and route template
    (``/v1/personas/{persona_id}``, not the path asked for)."""
    found = _classes.get((method, route_template))
    if found is None:
        found = _classify(method, route_template)
        if len(_classes) < _MAX_CLASSIFIED:
            _classes[(method, route_template)] = found
    return found


def _classify(method: str, template: str) -> RouteClass:
    if _under(template, _EXEMPT):
        return RouteClass.exempt
    named = _NAMED.get((method, template))
    if named is not None:
        return named
    if method not in _READS and _under(template, _REGISTRY):
        return RouteClass.writes
    return RouteClass.other


def _under(template: str, prefixes: tuple[str, ...]) -> bool:
    return any(template == p or template.startswith(p + "/") for p in prefixes)
