"""A rating of one reply: thumbs up or down, with an optional note."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from personae.api.schemas.common import Body, Public, Timestamp
from personae.conversations.ratings import MAX_NOTE_CHARS


class RatingCreate(Body):
    rating: Literal["up", "down"]
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS,
                             description="why (for the persona's owner)")


class RatingPublic(Public):
    message_id: int
    session_id: str
    persona_id: str
    persona_version: int = Field(description="the version that wrote the reply")
    rating: Literal["up", "down"]
    note: str | None
    created_at: Timestamp = Field(description="when the reply was first rated")
    updated_at: Timestamp = Field(description="when this rating was given")


class RatingsPublic(Public):
    data: list[RatingPublic]
    count: int
