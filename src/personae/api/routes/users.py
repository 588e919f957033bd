"""Users and API keys (admins; a key's owner may revoke it)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
