"""How the finished trials of a search came out: ok, failed or pruned, counted as they finish.

The progress bar and the end-of-search summary show these counts, so a search whose trials all
fail says so while it runs instead of showing an empty best loss.
"""
from __future__ import annotations

from dataclasses import dataclass

from hyperdist.store import outcome


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    pruned: int = 0

    def add(self, state: str, status: str | None) -> None:
        kind = outcome(state, status)
        setattr(self, kind, getattr(self, kind) + 1)

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.ok + other.ok, self.failed + other.failed, self.pruned + other.pruned)

    def counts(self) -> tuple[int, int, int]:
        return self.ok, self.failed, self.pruned

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.pruned


def counts_text(counts: tuple[int, int, int]) -> str:
    return "{} ok, {} failed, {} pruned".format(*counts)
