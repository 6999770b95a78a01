"""The ``reason`` an operator action carries (SPEC section 10, EU Annex 11 clause 9)."""

from __future__ import annotations

from ledger.errors import InvalidRequest

#: The longest reason kept; longer ones are refused, not cut.
MAX_REASON_LENGTH = 2000


def check_reason(reason: str | None, *, required: bool, action: str) -> str | None:
    """The reason to record for ``action``: stripped, or None when absent.

    Refused (422, nothing written) when it is missing and ``required`` (the setting
    ``RUNLEDGER_REQUIRE_REASON``), or longer than ``MAX_REASON_LENGTH``.
    """
    text = reason.strip() if reason is not None else ""
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidRequest(f"the reason for {action} is longer than {MAX_REASON_LENGTH} characters")
    if not text:
        if required:
            raise InvalidRequest(
                f"{action} needs a reason: this ledger is set with RUNLEDGER_REQUIRE_REASON=true"
            )
        return None
    return text
