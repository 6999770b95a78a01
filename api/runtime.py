"""What a running API holds: settings, the ledger service, the read models, the file store and
the token store. Built by the app's lifespan (or by ``runledger serve``), never at import time.

The read models and the file store are written by other parts of the team; when one of them is
not importable, the routes that need it answer 503 (a clear "not available"), never a fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from api.auth import TokenStore
from api.errors import Unavailable
from ledger.service import Ledger
from ledger.settings import Settings

log = structlog.get_logger()


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    tokens: TokenStore
    views_: Any = None
    files_: Any = None
    closers: list[Any] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        ledger = Ledger(settings)
        tokens = TokenStore(ledger.recorder.datastore, settings.database)  # type: ignore[attr-defined]
        runtime = cls(settings=settings, ledger=ledger, tokens=tokens)
        try:
            from projections import ReadModels  # type: ignore[attr-defined,unused-ignore]

            runtime.views_ = ReadModels(settings)
        except ImportError as exc:
            log.warning("read_models_unavailable", error=str(exc))
        try:
            from ledger.store.filestore import FileStore  # type: ignore[import-not-found,unused-ignore]

            runtime.files_ = FileStore(settings.file_store_dir)
        except ImportError as exc:
            log.warning("file_store_unavailable", error=str(exc))
        return runtime

    @property
    def views(self) -> Any:
        if self.views_ is None:
            raise Unavailable("the read models (projections) are not available in this build")
        return self.views_

    @property
    def files(self) -> Any:
        if self.files_ is None:
            raise Unavailable("the file store is not available in this build")
        return self.files_

    def close(self) -> None:
        if self.views_ is not None:
            self.views_.close()
        self.ledger.close()
