"""What a conversation turn emits, in order; every transport (REST, SSE, WebSocket)
serialises these same events with :func:`event_dict` (or :func:`event_json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from personae.conversations.records import MessageRecord
from personae.errors import PersonaeError


@dataclass(frozen=True, slots=True)
class MessageSaved:
    """A message was committed: the user's (before the turn) or a greeting."""

    message: MessageRecord
    type: str = "message"


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    type: str = "delta"


@dataclass(frozen=True, slots=True)
class Done:
    """The assistant's reply, committed, with usage and timing."""

    message: MessageRecord
    usage: dict[str, int] = field(default_factory=dict)
    type: str = "done"


@dataclass(frozen=True, slots=True)
class TurnFailed:
    """The turn failed; ``error`` is the original exception, ``saved`` any partial reply."""

    error: PersonaeError
    saved: MessageRecord | None = None
    type: str = "error"

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message

    @property
    def status(self) -> int:
        return self.error.status


@dataclass(frozen=True, slots=True)
class PersonaSwitched:
    persona_id: str
    persona_version: int
    name: str
    language: str
    voice: dict[str, Any]
    type: str = "persona_switched"


TurnEvent = MessageSaved | Delta | Done | TurnFailed | PersonaSwitched


@dataclass(frozen=True, slots=True)
class LiveError:
    """A live client's request failed (a live conversation goes on after it)."""

    error: PersonaeError
    type: str = "error"


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The running reply was stopped by the client; ``message`` is its saved part."""

    message: MessageRecord | None
    type: str = "interrupted"


LiveEvent = TurnEvent | LiveError | Interrupted


def error_dict(error: PersonaeError) -> dict[str, Any]:
    """An error inside an event: the one envelope's body, with the HTTP status."""
    return {**error.to_dict()["error"], "status": error.status}


def event_dict(event: LiveEvent) -> dict[str, Any]:
    if isinstance(event, Delta):
        return {"type": "delta", "text": event.text}
    if isinstance(event, MessageSaved):
        return {"type": "message", "message": event.message.public()}
    if isinstance(event, Done):
        return {"type": "done", "message": event.message.public(), "usage": event.usage}
    if isinstance(event, TurnFailed):
        return {"type": "error", "error": error_dict(event.error),
                "message": event.saved.public() if event.saved else None}
    if isinstance(event, LiveError):
        return {"type": "error", "error": error_dict(event.error)}
    if isinstance(event, Interrupted):
        return {"type": "interrupted",
                "message": event.message.public() if event.message else None}
    return {"type": "persona_switched", "persona_id": event.persona_id,
            "persona_version": event.persona_version, "name": event.name,
            "language": event.language, "voice": event.voice}


def event_json(event: LiveEvent) -> str:
    """:func:`event_dict` as compact JSON text; a delta (most of what a turn sends) is
    written directly, without a dict in between."""
    if isinstance(event, Delta):
        return f'{{"type":"delta","text":{json.dumps(event.text, ensure_ascii=False)}}}'
    return json.dumps(event_dict(event), ensure_ascii=False, separators=(",", ":"))
