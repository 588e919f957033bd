"""Who is asking: every core operation that touches user data takes a Principal."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    member = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


LOCAL_ADMIN_ID = "local"
