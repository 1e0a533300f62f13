"""`sample(space, rng=...)`: one random configuration of a space, as `hyperopt.pyll.stochastic.sample`."""
from __future__ import annotations

from typing import Any

import numpy as np

from hyperdist.errors import HyperdistError
from hyperdist.space.compiled import compile_space, space_eval


def sample(space: Any, rng: np.random.Generator | np.random.RandomState | int | None = None) -> Any:
    """Draw every parameter from its prior (Hyperopt's distributions) and build the configuration the
    objective would receive. `rng`: a numpy Generator (Hyperopt's argument), a RandomState (what
    tutorials written for Hyperopt before 0.2.7 pass; each call draws a fresh seed from it), an int
    seed, or None."""
    if isinstance(rng, np.random.RandomState):
        rng = np.random.default_rng(rng.randint(0, 2**32 - 1, dtype=np.uint64))
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise HyperdistError(f"sample: rng={rng!r} must be a numpy Generator (np.random.default_rng(seed)), "
                             "a RandomState or an int seed")
    compiled = compile_space(space)
    row = compiled.sample(rng, 1)[0]
    return space_eval(space, compiled.to_assignment(row))


__all__ = ["sample"]
