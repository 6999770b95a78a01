"""What an operator does to a run: :class:`OperatorCommands` (cancel, label)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.domain.run import Run
from ledger.reasons import check_reason
from ledger.service.base import LedgerBase


class OperatorCommands(LedgerBase):
    """The commands of a person at the API, on a run someone else executes."""

    def cancel(self, run_id: str, *, principal: str, reason: str | None = None) -> Run:
        reason = check_reason(reason, required=self.settings.require_reason, action="cancel")
        run = self.get_run(run_id)
        run.cancel(by=principal, reason=reason, at=self.clock())
        self._save(run)
        return run

    def label(
        self,
        run_id: str,
        *,
        set_: Mapping[str, Any],
        remove: Sequence[Any],
        principal: str,
        reason: str | None = None,
    ) -> Run:
        """Set and remove labels of a run (SPEC section 8): one ``Run.Labelled``."""
        why = check_reason(reason, required=self.settings.require_reason, action="labels")
        run = self.get_run(run_id)
        run.label(set_=dict(set_), remove=list(remove), by=principal, reason=why, at=self.clock())
        self._save(run)
        return run
