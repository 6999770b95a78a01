"""What a running API holds: settings, the ledger service, the views (through their query
facade, :class:`~projections.ReadModels`), the file store, the token store and the health of
the process's long-lived loops. Built by the
app's lifespan (or by ``runledger serve``), never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.auth import TokenStore
from ledger.loops import Health
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore
from projections import ReadModels


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    tokens: TokenStore
    views: ReadModels
    files: FileStore
    #: The long-lived loops of this process (runner, executor, lease monitor, follower):
    #: which are down, for ``/readyz``.
    health: Health = field(default_factory=Health)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        ledger = Ledger(settings)
        tokens = TokenStore(ledger.recorder.datastore, settings.database)  # type: ignore[attr-defined]
        return cls(
            settings=settings,
            ledger=ledger,
            tokens=tokens,
            views=ReadModels(settings),
            files=FileStore(settings.file_store_dir),
        )

    def close(self) -> None:
        self.views.close()
        self.ledger.close()
