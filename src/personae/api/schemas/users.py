"""The caller, as ``/v1/me`` reports it."""

from __future__ import annotations

from personae.api.schemas.common import Public
from personae.auth.principal import Role


class UserPublic(Public):
    id: str
    name: str
    role: Role
