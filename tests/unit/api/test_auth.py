"""Roles: auditor < operator < admin, and worker tokens that may only claim and report."""

from __future__ import annotations

from api.auth import Principal, hash_token, new_token


def test_each_role_includes_the_ones_before_it_and_worker_stands_apart() -> None:
    table = {
        role: {need for need in ("auditor", "operator", "admin", "worker") if Principal("p", role).has(need)}
        for role in ("auditor", "operator", "admin", "worker")
    }
    assert table == {
        "auditor": {"auditor"},
        "operator": {"auditor", "operator"},
        "admin": {"auditor", "operator", "admin", "worker"},
        "worker": {"worker"},
    }


def test_tokens_are_random_and_only_their_sha256_is_kept() -> None:
    first, second = new_token(), new_token()
    assert first != second and first.startswith("rl_") and len(first) > 40
    assert hash_token(first) != first
    assert len(hash_token(first)) == 64
