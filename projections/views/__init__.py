"""The views, one module each (its tables, its event handlers, its queries), and the list the
runner keeps up to date and the query facade reads."""

from __future__ import annotations

from collections.abc import Sequence

from projections.view import View
from projections.views.audit import AuditView
from projections.views.lineage import LineageView
from projections.views.marquez import MarquezView
from projections.views.stats import StatsView
from projections.views.summaries import SummariesView


def default_views() -> list[View]:
    return [SummariesView(), StatsView(), LineageView(), AuditView(), MarquezView()]


def view_named(views: Sequence[View], name: str) -> View:
    for view in views:
        if view.name == name:
            return view
    # "projection": the word of the command that names one, ``runledger projections rebuild NAME``
    raise ValueError(f"no projection {name!r}; known: {', '.join(v.name for v in views)}")
