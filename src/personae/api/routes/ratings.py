"""Ratings of replies: thumbs up or down, per message, by the session's owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from personae.api.deps import CurrentPrincipal, RuntimeDep
from personae.api.schemas.common import MAX_DB_INT, error_responses
from personae.api.schemas.ratings import RatingCreate, RatingPublic, RatingsPublic

router = APIRouter(prefix="/sessions", tags=["ratings"])
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
MessageId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
RATING_PATH = "/{session_id}/messages/{message_id}/rating"


@router.get("/{session_id}/ratings", responses=error_responses(401, 404, 422))
async def session_ratings(session_id: SessionId, principal: CurrentPrincipal,
                          runtime: RuntimeDep) -> RatingsPublic:
    """Your ratings of the replies in one of your sessions, oldest reply first."""
    found = await runtime.ratings.of_session(principal, session_id)
    return RatingsPublic.model_validate({"data": [r.public() for r in found],
                                         "count": len(found)})


@router.post(RATING_PATH, responses=error_responses(401, 404, 422))
async def rate_message(session_id: SessionId, message_id: MessageId, body: RatingCreate,
                       principal: CurrentPrincipal, runtime: RuntimeDep) -> RatingPublic:
    """Rate a persona's reply in one of your sessions; rating again replaces it."""
    rating = await runtime.ratings.rate(principal, session_id, message_id, body.rating,
                                        body.note)
    return RatingPublic.model_validate(rating.public())


@router.delete(RATING_PATH, status_code=204, responses=error_responses(401, 404, 422))
async def remove_rating(session_id: SessionId, message_id: MessageId,
                        principal: CurrentPrincipal, runtime: RuntimeDep) -> Response:
    """Take back your rating of a reply."""
    await runtime.ratings.remove(principal, session_id, message_id)
    return Response(status_code=204)
