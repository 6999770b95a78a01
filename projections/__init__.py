"""runledger's read side: views built from the events alone, and the queries over them.

Words: a *view* is one read model (its tables, its event handlers, its queries; one module
each under :mod:`projections.views`); :class:`ReadModels` is the query facade over all the
views; the *projection runner* (:mod:`projections.runner`) keeps them up to date, and a
*rebuild* (:mod:`projections.rebuild`) builds them anew. What the contract names keeps its
word: ``GET /api/projections``, ``runledger projections status|rebuild``, the
``runledger_projection_lag_events`` metric, and the runner's and rebuilds' log events
(``projection_runner_started``, ``projection_rebuild_progress``, ...).
"""

from projections.readmodels import ReadModels

__all__ = ["ReadModels"]
