"""Browser sessions for the dashboard: a signed, expiring cookie naming an API key.

The cookie holds the id of the key the user signed in with (never the key itself), a
random session id, a random CSRF token and when it was issued; it is signed with the
server's secret, so it cannot be forged or edited, and it expires after
``max_age_seconds``. Revoking the key, or disabling its user, ends every session made
with it at once, because each request resolves the key id again (through the key
cache). Signing out ends this session only: its id is recorded as ended (until the
cookie would have expired anyway), which also refuses any copy of the cookie; "end all
sign-ins" ends every session issued with the key until then. A cookie without a
session id reads as no session, since it could not be signed out on its own. A visitor
who has not signed in still gets a session without a key: its CSRF token guards the
sign-in form and, on a keyless loopback server, every other form.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "personae_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "web-secret"
MAX_COOKIE_CHARS = 4096
MIN_SESSION_ID_CHARS = 16
MAX_SESSION_ID_CHARS = 64  # the width of ended_browser_sessions.session_id
SALT = "personae.browser-session"


@dataclass(frozen=True)
class BrowserSession:
    """One browser's session: who signed in (``key_id``; ``None`` before sign-in)."""

    key_id: str | None
    csrf: str
    issued_at: float  # seconds since the epoch: "end all sign-ins" ends those before it
    session_id: str  # what signing out records as ended

    def csrf_matches(self, offered: str | None) -> bool:
        return bool(offered) and secrets.compare_digest(self.csrf, offered or "")


class BrowserSessions:
    """Issues and reads session cookies; a tampered, expired or foreign cookie reads as
    no session at all."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self.max_age_seconds = max_age_seconds
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)

    def issue(self, key_id: str | None) -> tuple[str, BrowserSession]:
        """A new session (a fresh id and CSRF token) and the cookie value that carries it."""
        session = BrowserSession(key_id, secrets.token_urlsafe(24), time.time(),
                                 secrets.token_urlsafe(18))
        value = self._serializer.dumps({"k": key_id, "c": session.csrf,
                                        "t": session.issued_at, "i": session.session_id})
        return value, session

    def expires_at(self, session: BrowserSession) -> float:
        """When the session's cookie stops being accepted (epoch seconds)."""
        return session.issued_at + self.max_age_seconds

    def read(self, cookie: str | None) -> BrowserSession | None:
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        key_id, csrf, issued, session_id = (data.get(name) for name in "kcti")
        if (not isinstance(csrf, str) or not (key_id is None or isinstance(key_id, str))
                or not isinstance(issued, float | int) or isinstance(issued, bool)
                or not _is_session_id(session_id)):
            return None
        return BrowserSession(key_id, csrf, float(issued), session_id)


def _is_session_id(value: object) -> TypeGuard[str]:
    return (isinstance(value, str)
            and MIN_SESSION_ID_CHARS <= len(value) <= MAX_SESSION_ID_CHARS)


def load_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret, or one kept in ``<data_dir>/web-secret`` (made on first use,
    readable by its owner only) so that every process on this data folder, and the next
    start, accept the same cookies."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    try:
        os.link(temporary, path)  # whole or not at all: never a half-written secret
    except FileExistsError:  # another process made it first
        pass
    finally:
        temporary.unlink()
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ValueError(f"{path} holds no usable secret: delete it to make a new one")
    return secret
