"""A persona's own figures: turns, tokens, latency, errors and ratings per version and day."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
