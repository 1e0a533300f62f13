"""What every algorithm needs: accepting Hyperopt-style arguments, and recognising repeated points."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..history import Observations
from ..space import SearchSpace, compile_space


def as_space(domain: Any) -> SearchSpace:
    """Accept a compiled space, a raw `hp` tree, or anything with a `.space` attribute."""
    if isinstance(domain, SearchSpace):
        return domain
    return compile_space(getattr(domain, "space", domain))


def as_observations(trials: Any, space: SearchSpace) -> Observations:
    """Accept `Observations`, or a history object offering `.observations(space)`."""
    if trials is None:
        return Observations.empty(len(space))
    if isinstance(trials, Observations):
        return trials
    return trials.observations(space)


def is_discrete(space: SearchSpace) -> bool:
    return all(p.dist.categorical or p.dist.q for p in space.params)


def row_keys(X: np.ndarray) -> np.ndarray:
    """One opaque key per row (NaN as inf, rounded, -0 as 0), comparable with np.isin: no Python loop."""
    K = np.ascontiguousarray(np.round(np.where(np.isnan(X), np.inf, X), 9) + 0.0)
    return K.view(np.dtype((np.void, K.itemsize * K.shape[1]))).ravel()


def discrete_keys(space: SearchSpace, X: np.ndarray) -> np.ndarray | None:
    """Keys of the rows seen so far, or None when the space is continuous (repeats are then negligible)."""
    return row_keys(X) if is_discrete(space) else None


def is_seen(seen: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of `rows` (k x d) repeat a row whose keys are `seen`."""
    return np.isin(row_keys(rows), seen)
