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


def row_key(row: np.ndarray) -> tuple:
    return tuple(np.round(np.nan_to_num(row, nan=np.inf), 9).tolist())


def discrete_keys(space: SearchSpace, X: np.ndarray) -> set | None:
    """Keys of the rows seen so far, or None when the space is continuous (repeats are then negligible)."""
    if not is_discrete(space):
        return None
    return {row_key(r) for r in X}
