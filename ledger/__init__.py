"""runledger's write side: domain events, aggregates, hashing, the application service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runledger")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
