"""The domain: aggregates and their events, definitions, what workers report, OpenLineage
models, and the run status rules (:mod:`ledger.domain.status`). Nothing here knows how events
are stored."""

from ledger.domain.topics import register_moved_topics

register_moved_topics()
