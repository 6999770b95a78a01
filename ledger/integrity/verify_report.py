"""What ``verify`` found: each problem with its place (stream, sequence, position), and the
report the CLI prints and ``POST /api/ledger/verify`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_LISTED_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    position: int | None = None
    stream: str | None = None
    sequence: int | None = None

    def __str__(self) -> str:
        place = []
        if self.stream is not None:
            place.append(f"stream {self.stream}")
        if self.sequence is not None:
            place.append(f"sequence {self.sequence}")
        if self.position is not None:
            place.append(f"position {self.position}")
        where = ", ".join(place)
        return f"{self.kind}: {where}: {self.detail}" if where else f"{self.kind}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream": self.stream,
            "sequence": self.sequence,
            "position": self.position,
            "detail": self.detail,
            "message": str(self),
        }


@dataclass
class Problems:
    """Every problem counted, the first ``MAX_LISTED_PROBLEMS`` kept."""

    events_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)


@dataclass
class VerifyReport(Problems):
    tree_size: int = 0
    root_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "problems": [p.to_json() for p in self.problems],
            "problem_count": self.problem_count,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
        }
