"""What a conversation turn emits, in order; every transport (REST, SSE, WebSocket)
serialises these same events with :func:`event_dict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from personae.conversations.store import MessageRecord


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
    code: str
    message: str
    status: int
    saved: MessageRecord | None = None
    type: str = "error"


@dataclass(frozen=True, slots=True)
class PersonaSwitched:
    persona_id: str
    persona_version: int
    name: str
    language: str
    voice: dict[str, Any]
    type: str = "persona_switched"


TurnEvent = MessageSaved | Delta | Done | TurnFailed | PersonaSwitched


def event_dict(event: TurnEvent) -> dict[str, Any]:
    if isinstance(event, Delta):
        return {"type": "delta", "text": event.text}
    if isinstance(event, MessageSaved):
        return {"type": "message", "message": event.message.public()}
    if isinstance(event, Done):
        return {"type": "done", "message": event.message.public(), "usage": event.usage}
    if isinstance(event, TurnFailed):
        return {"type": "error", "error": {"code": event.code, "message": event.message,
                                           "status": event.status},
                "message": event.saved.public() if event.saved else None}
    return {"type": "persona_switched", "persona_id": event.persona_id,
            "persona_version": event.persona_version, "name": event.name,
            "language": event.language, "voice": event.voice}
