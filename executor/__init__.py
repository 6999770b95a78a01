"""The built-in executor (SPEC section 5): workers that claim runs and execute their tasks."""

from executor.worker import Executor, default_worker_id

__all__ = ["Executor", "default_worker_id"]
