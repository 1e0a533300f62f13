"""Random search: independent draws from the prior, the baseline every other algorithm must beat."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hyperdist.space.compiled import SearchSpace
from hyperdist.algorithms.common import as_observations, as_space, discrete_keys, is_seen, row_keys


def suggest(new_ids: Sequence[int], domain: Any, trials: Any, seed: Any, **_: Any) -> list[dict]:
    """One prior draw per new id; in an all-discrete space, exact repeats are redrawn."""
    space = as_space(domain)
    rng = np.random.default_rng(seed)
    rows = draw_unique(space, rng, len(new_ids), as_observations(trials, space).X)
    return [space.to_assignment(r) for r in rows]


def draw_unique(space: SearchSpace, rng: np.random.Generator, n: int, seen_X: np.ndarray, tries: int = 20) -> np.ndarray:
    """n prior rows, avoiding rows already in `seen_X` (and each other) when every parameter is discrete."""
    rows = space.sample(rng, n)
    seen = discrete_keys(space, seen_X)
    if seen is None:
        return rows
    for i in range(n):
        for _ in range(tries):
            if not is_seen(seen, rows[i:i + 1])[0]:
                break
            rows[i] = space.sample(rng, 1)[0]
        seen = np.append(seen, row_keys(rows[i:i + 1]))
    return rows
