"""runledger's read side: views built from the events alone, and the queries over them."""

from projections.readmodels import ReadModels

__all__ = ["ReadModels"]
