"""Sealing and opening sensitive parameter values (SPEC section 11), for the commands that
trigger runs and the readers that show them: :class:`SealingBase`. The keys live in
:class:`~ledger.store.keystore.KeyStore`, outside the events table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.domain.definition import WorkflowDefinition
from ledger.domain.run import Run
from ledger.errors import Conflict
from ledger.sensitive import is_sealed, new_key, revealed, seal_parameters
from ledger.service.base import LedgerBase
from ledger.store.keystore import KeyStore


class SealingBase(LedgerBase):
    _keys: KeyStore | None = None

    @property
    def keys(self) -> KeyStore:
        """The run keys, outside the events table (its tables created on first use)."""
        if self._keys is None:
            self._keys = KeyStore(self.settings)
        return self._keys

    def seal_for_new_run(
        self, definition: WorkflowDefinition, run_id: str, parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``parameters`` with sensitive values sealed under a new key kept for ``run_id``
        (the key is stored before the run's trigger is: no run holds a value it cannot open)."""
        sensitive = definition.sensitive_params
        if not any(parameters.get(name) is not None for name in sensitive):
            return dict(parameters)
        key = new_key()
        self.keys.create(run_id, key)
        return seal_parameters(key, run_id, parameters, sensitive)

    def revealed_parameters(
        self, run_id: str, parameters: Mapping[str, Any], *, expunged: bool
    ) -> dict[str, Any]:
        """The plain parameters while the run's key exists; sealed ones ``[erased]`` after."""
        if not any(is_sealed(v) for v in parameters.values()):
            return dict(parameters)
        key = None if expunged else self.keys.get(run_id)
        return revealed(key, run_id, parameters, erased=key is None)

    def run_parameters(self, run: Run) -> dict[str, Any]:
        """A run's parameters in the clear (for its executor and operators)."""
        return self.revealed_parameters(run.id, run.parameters, expunged=run.expunged)

    def parameters_to_repeat(self, run_id: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """A stored run's parameters opened for a replay or resume (sealed again under the new
        run's key), overridden by ``overrides``; 409 when a sensitive value is erased and not
        given again."""
        run = self.get_run(run_id)
        opened = self.run_parameters(run)
        erased = sorted(
            name for name, value in run.parameters.items() if is_sealed(value) and name not in overrides
        )
        if erased and (run.expunged or self.keys.get(run_id) is None):
            raise Conflict(
                f"run {run_id} is expunged: its sensitive parameters {', '.join(erased)} are erased; "
                "give them again in param_overrides"
            )
        return {k: v for k, v in opened.items() if v is not None} | dict(overrides)
