"""Users and API keys as the store returns them (a key's secret is never kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from personae.auth.principal import Role


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    role: Role
    created_at: datetime
    disabled: bool


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked: bool
    # The key's own rate-limit overrides (route class or "tokens_per_day" -> value);
    # None: its role's defaults.
    limits: dict[str, str] | None = None
