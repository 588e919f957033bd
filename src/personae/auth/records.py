"""Users, API keys and dashboard access as the store returns them (a key's secret is
never kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from personae.auth.principal import Principal, Role


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


@dataclass(frozen=True, slots=True)
class BrowserAccess:
    """What a dashboard session's key grants, as one query finds it: the key's owner,
    when all the key's sessions were last ended (epoch seconds; None: never), and
    whether this session was signed out on its own."""

    principal: Principal
    sessions_ended_at: float | None
    session_ended: bool
