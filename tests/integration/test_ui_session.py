"""The web UI's session cookie against the real token store, on both backends."""

from __future__ import annotations

import threading
from pathlib import Path

from api.auth import TokenStore
from api.ui.session import csrf_ok, open_cookie, read_cookie, session_key
from ledger.service import Ledger
from ledger.settings import Settings

HOUR = 3600.0


def _store(ledger: Ledger, settings: Settings) -> TokenStore:
    return TokenStore(ledger.recorder.datastore, settings.database)  # type: ignore[attr-defined]


def test_a_cookie_opens_its_tokens_session_until_the_token_is_revoked(
    ledger: Ledger, settings: Settings
) -> None:
    tokens = _store(ledger, settings)
    key = session_key(settings)
    token = tokens.create(name="ana", role="operator")[1]
    principal = tokens.authenticate(token)
    assert principal is not None
    cookie = open_cookie(key, principal)
    assert token not in cookie  # the cookie names the token by id, never holds it
    session = read_cookie(key, cookie, tokens, max_age_seconds=HOUR)
    assert session is not None and session.principal == principal
    assert csrf_ok(key, session, session.csrf(key)) and not csrf_ok(key, session, None)
    assert not csrf_ok(key, session, "é\ud800")  # any text is compared, none raises
    assert tokens.revoke(principal.token_id) == 1
    assert read_cookie(key, cookie, tokens, max_age_seconds=HOUR) is None


def test_a_forged_expired_or_worker_cookie_opens_nothing(ledger: Ledger, settings: Settings) -> None:
    tokens = _store(ledger, settings)
    key = session_key(settings)
    operator = tokens.authenticate(tokens.create(name="bo", role="operator")[1])
    worker = tokens.authenticate(tokens.create(name="w", role="worker")[1])
    assert operator is not None and worker is not None
    cookie = open_cookie(key, operator, now=1_000_000.0)
    token_id, issued, mac = cookie.split(".")
    for forged in (
        f"{token_id}.{int(issued) + 10**6}.{mac}",  # a later time under the old signature
        f"{worker.token_id}.{issued}.{mac}",  # another token's id
        open_cookie(b"another key", operator),
        "",
        "x" * 500,
        f"{token_id}.{issued}.é",
    ):
        assert read_cookie(key, forged, tokens, max_age_seconds=HOUR) is None
    assert read_cookie(key, cookie, tokens, max_age_seconds=HOUR, now=1_000_000.0 + HOUR - 1) is not None
    assert read_cookie(key, cookie, tokens, max_age_seconds=HOUR, now=1_000_000.0 + HOUR + 1) is None
    assert read_cookie(key, open_cookie(key, worker), tokens, max_age_seconds=HOUR) is None


def test_every_server_process_of_one_data_directory_signs_with_the_same_key(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", data_dir=tmp_path / "state")
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(session_key(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert (tmp_path / "state" / "ui-session-key").stat().st_mode & 0o777 == 0o600
    assert session_key(Settings(database_url=settings.database_url, ui_session_key="set")) == b"set"
