"""Who is asking: every core operation that touches user data takes a Principal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# A user's name is the namespace of their personas (``alice/tutor``), so it follows the
# persona slug rules: lowercase letters, digits, '-' and '_', at most 32 characters.
USER_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
USER_NAME_RULE = ("lowercase letters, digits, '-' or '_', starting with a letter or digit, "
                  "at most 32 characters")


def is_valid_user_name(name: str) -> bool:
    return re.fullmatch(USER_NAME_PATTERN, name) is not None


class Role(StrEnum):
    admin = "admin"
    member = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    name: str
    role: Role
    # The API key the caller used (None: keyless loopback, the CLI, a worker) and that
    # key's own rate-limit overrides, as (route class or "tokens_per_day", value) pairs.
    key_id: str | None = None
    limit_overrides: tuple[tuple[str, str], ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


LOCAL_ADMIN_ID = "local"
KEY_PREFIX = "pk_"  # API keys start with it, so logs can spot and redact them


def is_api_key_format(token: str) -> bool:
    """A token written as Personae's own keys are (which may still be unknown or revoked),
    as opposed to a client's placeholder such as ``"x"`` or ``"sk-1234"``."""
    return token.startswith(KEY_PREFIX)
