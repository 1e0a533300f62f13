"""What the algorithms see of past trials: a numeric table, losses and states, built incrementally.

Keeping the table columnar (one row per trial, NaN for inactive parameters) lets TPE work on whole
arrays, and appending rows as results arrive avoids rebuilding the table from documents each time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hyperdist.space.compiled import SearchSpace

OK, PENDING, FAILED = 0, 1, 2


def classify(done: bool, result: Mapping[str, Any] | None) -> tuple[int, float | None]:
    """How a finished trial enters the history TPE sees: status ok -> its loss; pruned -> the last
    value it reported (see pruning.py); anything else -> failed."""
    result = result or {}
    loss = result.get("loss")
    if done and isinstance(loss, (int, float)) and not isinstance(loss, bool) and np.isfinite(loss) \
            and result.get("status") in ("ok", "pruned"):
        return OK, float(loss)
    return FAILED, None


def _entered(state: Any, loss: Any) -> tuple[np.ndarray, np.ndarray]:
    """(state, loss) as the table stores them: an OK needs a finite loss, else it counts as FAILED;
    only OK rows keep a loss. Scalars or arrays alike."""
    state, loss = np.asarray(state, dtype=np.int8), np.asarray(loss, dtype=float)
    ok = (state == OK) & np.isfinite(loss)
    return np.where((state == OK) & ~ok, FAILED, state).astype(np.int8), np.where(ok, loss, np.nan)


@dataclass(frozen=True)
class Observations:
    """Rows in trial order: X (n x d, choice = option index, NaN = inactive), loss, state."""

    X: np.ndarray
    loss: np.ndarray
    state: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)

    @classmethod
    def empty(cls, d: int) -> "Observations":
        return cls(np.empty((0, d)), np.empty(0), np.empty(0, dtype=np.int8))

    def with_pending(self, rows: np.ndarray) -> "Observations":
        """These observations plus rows that are still being evaluated."""
        rows = np.atleast_2d(rows)
        return Observations(
            np.vstack([self.X, rows]),
            np.concatenate([self.loss, np.full(len(rows), np.nan)]),
            np.concatenate([self.state, np.full(len(rows), PENDING, dtype=np.int8)]),
        )


class HistoryTable:
    """An append-only, growable table of trials keyed by trial id; results update rows in place."""

    def __init__(self, space: SearchSpace, capacity: int = 64) -> None:
        self.space = space
        self._X = np.full((capacity, len(space)), np.nan)
        self._loss = np.full(capacity, np.nan)
        self._state = np.full(capacity, PENDING, dtype=np.int8)
        self._rows: dict[Any, int] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: Any) -> bool:
        return key in self._rows

    def add(self, key: Any, params: Mapping[str, Any], state: int = PENDING, loss: float | None = None) -> None:
        if key in self._rows:
            self.set_result(key, state, loss)
            return
        self._make_room(1)
        self._X[self._n] = self.space.drop_invalid(self.space.to_row(params)[None, :])[0]
        self._rows[key] = self._n
        self._n += 1
        self.set_result(key, state, loss)

    def extend(self, keys: np.ndarray, X: np.ndarray, loss: np.ndarray, state: np.ndarray) -> None:
        """Append many rows at once (a resume: 100 000 rows without a Python loop per row)."""
        n, m = self._n, len(keys)
        self._make_room(m)
        self._X[n:n + m] = self.space.drop_invalid(np.array(X, dtype=float))
        self._state[n:n + m], self._loss[n:n + m] = _entered(state, loss)
        self._rows.update(zip(keys.tolist(), range(n, n + m)))
        self._n = n + m

    def _make_room(self, m: int) -> None:
        """Capacity for `m` more rows, at least doubling, so appends stay amortised O(1)."""
        missing = self._n + m - len(self._loss)
        if missing > 0:
            grow = max(64, self._n, missing)
            self._X = np.vstack([self._X, np.full((grow, self._X.shape[1]), np.nan)])
            self._loss = np.concatenate([self._loss, np.full(grow, np.nan)])
            self._state = np.concatenate([self._state, np.full(grow, PENDING, dtype=np.int8)])

    def rows(self, keys: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, loss, state) of these trials, in the order given."""
        i = np.fromiter((self._rows[k] for k in keys), dtype=np.intp, count=len(keys))
        return self._X[i], self._loss[i], self._state[i]

    def drop(self, key: Any) -> None:
        """Forget a trial (it vanished from the database): the last row moves into its place."""
        i = self._rows.pop(key)
        last = self._n - 1
        if i != last:
            moved = next(k for k, row in self._rows.items() if row == last)
            self._X[i], self._loss[i], self._state[i] = self._X[last], self._loss[last], self._state[last]
            self._rows[moved] = i
        self._n = last

    def set_result(self, key: Any, state: int, loss: float | None) -> None:
        i = self._rows[key]
        self._state[i], self._loss[i] = _entered(state, np.nan if loss is None else loss)

    def observations(self) -> Observations:
        n = self._n
        return Observations(self._X[:n], self._loss[:n], self._state[:n])
