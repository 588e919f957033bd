"""Ratings of replies: thumbs up or down, per message."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
