"""Nothing that could be a bearer token reaches a log line or an error message.

A token is ``rl_`` and 43 URL-safe characters (``api.auth.new_token``); anything of that shape
is replaced by ``rl_[redacted]`` wherever it appears in a log event's strings, and so is the
value of an ``Authorization`` header or a ``token=`` query parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from api.auth import TOKEN_PREFIX

#: The shape of a token's secret (and of anything close enough to be one).
SECRET = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{32,}")
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&;\s])(?:access_)?token=)[^&;\s]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+\S+")
REDACTED = f"{TOKEN_PREFIX}[redacted]"
_SECRET_KEYS = {"authorization", "token", "secret", "password", "admin_token"}


def looks_like_secret(text: str) -> bool:
    return SECRET.search(text) is not None


def redact(text: str) -> str:
    text = SECRET.sub(REDACTED, text)
    text = _QUERY_TOKEN.sub(lambda m: m.group(1) + "[redacted]", text)
    return _BEARER.sub(lambda m: m.group(1) + " [redacted]", text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: "[redacted]" if str(k).lower() in _SECRET_KEYS else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact_secrets(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every string of the event, redacted (see the module docstring)."""
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS and value is not None:
            event[key] = "[redacted]"
        else:
            event[key] = _clean(value)
    return event
