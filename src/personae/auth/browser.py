"""Browser sessions for the dashboard: a signed, expiring cookie naming an API key.

The cookie holds the id of the key the user signed in with (never the key itself), a
random CSRF token and when it was issued; it is signed with the server's secret, so it
cannot be forged or edited, and it expires after ``max_age_seconds``. Revoking the key,
or disabling its user, ends every session made with it at once, because each request
resolves the key id again (through the key cache); so does signing out, which ends
every session issued with that key until then. A visitor who has not signed in still
gets a session without a key: its CSRF token guards the sign-in form and, on a keyless
loopback server, every other form.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "personae_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "web-secret"
MAX_COOKIE_CHARS = 4096
_SALT = "personae.browser-session"


@dataclass(frozen=True)
class BrowserSession:
    """One browser's session: who signed in (``key_id``; ``None`` before sign-in)."""

    key_id: str | None
    csrf: str
    issued_at: float = 0.0  # seconds since the epoch: sign-out ends the sessions before it

    def csrf_matches(self, offered: str | None) -> bool:
        return bool(offered) and secrets.compare_digest(self.csrf, offered or "")


class BrowserSessions:
    """Issues and reads session cookies; a tampered, expired or foreign cookie reads as
    no session at all."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self.max_age_seconds = max_age_seconds
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def issue(self, key_id: str | None) -> tuple[str, BrowserSession]:
        """A new session (a fresh CSRF token) and the cookie value that carries it."""
        session = BrowserSession(key_id, secrets.token_urlsafe(24), time.time())
        value = self._serializer.dumps({"k": key_id, "c": session.csrf,
                                        "t": session.issued_at})
        return value, session

    def read(self, cookie: str | None) -> BrowserSession | None:
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        key_id, csrf, issued = data.get("k"), data.get("c"), data.get("t")
        if (not isinstance(csrf, str) or not (key_id is None or isinstance(key_id, str))
                or not isinstance(issued, float | int) or isinstance(issued, bool)):
            return None
        return BrowserSession(key_id, csrf, float(issued))


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
