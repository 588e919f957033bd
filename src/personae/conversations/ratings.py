"""Thumbs up or down on a persona's replies, by the user who had the conversation.

A rating belongs to the session's owner alone: another user's session or message is
not found, exactly as a missing one. Only assistant replies are rated; each keeps the
persona version that wrote it, so :mod:`conversations.metrics` counts it per version.
"""

from __future__ import annotations

from personae.auth.principal import Principal
from personae.conversations.engine import ConversationService
from personae.conversations.rating_store import RatingRecord, RatingStore, Thumb
from personae.conversations.records import MessageRecord
from personae.errors import FieldIssue, InvalidInput, NotFound, ValidationFailed

MAX_NOTE_CHARS = 2000
THUMBS: tuple[Thumb, ...] = ("up", "down")


class Ratings:
    def __init__(self, conversations: ConversationService, store: RatingStore) -> None:
        self.conversations = conversations
        self.store = store

    async def rate(self, principal: Principal, session_id: str, message_id: int,
                   rating: Thumb, note: str | None = None) -> RatingRecord:
        """Rate a reply in one of the caller's sessions; rating again replaces it."""
        if rating not in THUMBS:
            raise InvalidInput("rating must be 'up' or 'down'", {"rating": rating})
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise InvalidInput(f"note is longer than {MAX_NOTE_CHARS} characters",
                               {"max_chars": MAX_NOTE_CHARS})
        reply = await self._message(principal, session_id, message_id)
        if reply.role != "assistant":
            raise ValidationFailed([FieldIssue(
                "message_id", f"message {message_id} is the user's: only the persona's "
                "replies can be rated")], subject="rating")
        return await self.store.put(principal.user_id, reply, rating, note or None)

    async def of_session(self, principal: Principal, session_id: str) -> list[RatingRecord]:
        """The caller's ratings in one of their sessions (so a page shows its choices)."""
        await self.conversations.get(principal, session_id)  # the owner's, or 404
        return await self.store.of_session(session_id)

    async def remove(self, principal: Principal, session_id: str, message_id: int) -> None:
        """Take back the caller's rating of a reply (404 when it has none)."""
        await self._message(principal, session_id, message_id)
        if not await self.store.delete(session_id, message_id):
            raise NotFound(f"message {message_id} has no rating")

    async def _message(self, principal: Principal, session_id: str,
                       message_id: int) -> MessageRecord:
        await self.conversations.get(principal, session_id)  # the owner's, or 404
        found = await self.store.message(session_id, message_id)
        if found is None:
            raise NotFound(f"message {message_id} not found in session '{session_id}'")
        return found
