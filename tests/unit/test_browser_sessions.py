"""Dashboard session cookies: signed, expiring, and unreadable when tampered with."""

from __future__ import annotations

import stat
from pathlib import Path

import itsdangerous.timed
import pytest
from itsdangerous import URLSafeTimedSerializer

from personae.auth import browser
from personae.auth.browser import BrowserSessions, load_secret

SECRET = "s" * 40


def test_a_cookie_reads_back_as_the_session_it_carries() -> None:
    sessions = BrowserSessions(SECRET, 3600)
    cookie, session = sessions.issue("key-1")
    assert sessions.read(cookie) == session
    assert session.key_id == "key-1" and len(session.csrf) >= 24


def test_each_session_gets_its_own_csrf_token() -> None:
    sessions = BrowserSessions(SECRET, 3600)
    assert sessions.issue(None)[1].csrf != sessions.issue(None)[1].csrf


@pytest.mark.parametrize("cookie", ["", "garbage", "a" * 5000])
def test_nonsense_is_no_session(cookie: str) -> None:
    assert BrowserSessions(SECRET, 3600).read(cookie) is None


def test_an_edited_cookie_is_no_session() -> None:
    sessions = BrowserSessions(SECRET, 3600)
    cookie, _ = sessions.issue("key-1")
    signature = cookie.rpartition(".")[2]
    forged, _ = BrowserSessions("x" * 40, 3600).issue("admin-key")
    assert sessions.read(forged) is None  # signed with another secret
    assert sessions.read(forged.rpartition(".")[0] + "." + signature) is None


def test_an_expired_cookie_is_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = BrowserSessions(SECRET, 60)
    cookie, _ = sessions.issue("key-1")
    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 61)
    assert sessions.read(cookie) is None


def test_csrf_matches_only_its_own_token() -> None:
    _, session = BrowserSessions(SECRET, 60).issue(None)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf + "x")


def test_the_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path)
    assert load_secret(None, tmp_path) == first
    assert len(first) >= 32
    mode = stat.S_IMODE((tmp_path / browser.SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / browser.SECRET_FILE]  # no temp left


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    assert load_secret("configured-" * 4, tmp_path) == "configured-" * 4
    assert not (tmp_path / browser.SECRET_FILE).exists()


def test_a_damaged_secret_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / browser.SECRET_FILE).write_text("short")
    with pytest.raises(ValueError, match="delete it"):
        load_secret(None, tmp_path)


def test_each_session_gets_its_own_id_and_the_cookie_carries_it() -> None:
    sessions = BrowserSessions(SECRET, 3600)
    cookie, first = sessions.issue("key-1")
    _, second = sessions.issue("key-1")
    assert first.session_id != second.session_id
    assert 16 <= len(first.session_id) <= browser.MAX_SESSION_ID_CHARS
    read = sessions.read(cookie)
    assert read is not None and read.session_id == first.session_id


def test_a_session_expires_when_its_cookie_does() -> None:
    sessions = BrowserSessions(SECRET, 600)
    _, session = sessions.issue("key-1")
    assert sessions.expires_at(session) == session.issued_at + 600


@pytest.mark.parametrize("session_id", [None, "", 7, "x" * 200])
def test_a_cookie_without_a_usable_session_id_is_no_session(session_id: object) -> None:
    """Only a session with an id can be signed out on its own, so one without (made
    before sessions had ids, or malformed) is refused rather than trusted."""
    sessions = BrowserSessions(SECRET, 3600)
    payload = {"k": "key-1", "c": "c" * 32, "t": 1.0}
    if session_id is not None:
        payload["i"] = session_id
    signed = URLSafeTimedSerializer(SECRET, salt=browser.SALT).dumps(payload)
    assert sessions.read(signed) is None
