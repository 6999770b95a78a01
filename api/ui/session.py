"""The web UI's session: a signed cookie naming the token it was opened with, and CSRF tokens.

The cookie holds ``<token id>.<issued at>.<HMAC>``, never the token itself. Each request looks
the token id up in the token store again, so revoking the token ends the session at once, and
any server process that shares the key (``RUNLEDGER_UI_SESSION_KEY``, or the key file in the
data directory) accepts it: sessions survive ``serve --workers 2``. A form's CSRF token is an
HMAC of the session cookie, so it is worthless without the cookie and changes at every sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from api.auth import Principal, TokenStore
from ledger.settings import Settings

COOKIE = "rl_session"
#: The login form's own CSRF cookie (double submit: there is no session yet to tie it to).
LOGIN_COOKIE = "rl_login"
KEY_FILE = "ui-session-key"


def session_key(settings: Settings) -> bytes:
    """The signing key: the setting, or a random one created once in the data directory
    (``O_EXCL``: the first of several server processes to start writes it, the others read it)."""
    if settings.ui_session_key:
        return settings.ui_session_key.encode("utf-8")
    path = settings.state_dir / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    for _ in range(50):  # another process may have created the file and not written it yet
        text = path.read_text().strip()
        if text:
            return text.encode("utf-8")
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it, or set RUNLEDGER_UI_SESSION_KEY")


def same(sent: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (``hmac.compare_digest`` refuses
    non-ASCII ``str``: hostile input must not become a 500)."""
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    principal: Principal
    cookie: str

    def csrf(self, key: bytes) -> str:
        return _mac(key, "csrf", self.cookie)


def open_cookie(key: bytes, principal: Principal, *, now: float | None = None) -> str:
    """The cookie value for a sign-in of ``principal``."""
    issued = str(int(now if now is not None else time.time()))
    body = f"{principal.token_id}.{issued}"
    return f"{body}.{_mac(key, 'session', body)}"


def read_cookie(
    key: bytes, value: str | None, tokens: TokenStore, *, max_age_seconds: float, now: float | None = None
) -> Session | None:
    """The session this cookie opens, or None (absent, forged, expired, its token revoked)."""
    if not value or len(value) > 200 or value.count(".") != 2:
        return None
    token_id, issued, mac = value.split(".")
    if not same(mac, _mac(key, "session", f"{token_id}.{issued}")):
        return None
    if not issued.isdigit() or (now if now is not None else time.time()) - int(issued) > max_age_seconds:
        return None
    principal = tokens.principal_by_id(token_id)
    if principal is None or principal.role == "worker":
        return None
    return Session(principal=principal, cookie=value)


def csrf_ok(key: bytes, session: Session, sent: str | None) -> bool:
    return sent is not None and same(sent, session.csrf(key))


def login_csrf(key: bytes, nonce: str) -> str:
    return _mac(key, "login", nonce)
