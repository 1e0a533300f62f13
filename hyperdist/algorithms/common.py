"""What every algorithm needs: accepting Hyperopt-style arguments, and recognising repeated points."""
from __future__ import annotations

from typing import Any

import numpy as np

from numpy.random.bit_generator import ISeedSequence

from hyperdist.algorithms.history import Observations
from hyperdist.space.compiled import SearchSpace, compile_space


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


def near_repeats(space: SearchSpace, X: np.ndarray, rows: np.ndarray, near: float) -> np.ndarray:
    """Which of `rows` (k x d) nearly repeat a row of X: the same parameters active, every discrete value
    equal, and every continuous one in the same cell of a grid of `near` x its prior sigma (transformed
    space). near = 0: continuous values never count as repeats, so only rows whose active parameters are
    all discrete can repeat (a deterministic objective learns nothing from those)."""
    cont = np.array([not (p.dist.categorical or p.dist.q) for p in space.params])
    rows_active_cont = ~np.isnan(rows[:, cont]).all(axis=1) if cont.any() else np.zeros(len(rows), bool)
    if near <= 0:
        if rows_active_cont.all():
            return np.zeros(len(rows), dtype=bool)
        return np.isin(row_keys(rows), row_keys(X)) & ~rows_active_cont
    if not cont.any():
        return np.isin(row_keys(rows), row_keys(X))
    return np.isin(row_keys(_grid(space, rows, cont, near)), row_keys(_grid(space, X, cont, near)))


def _grid(space: SearchSpace, X: np.ndarray, cont: np.ndarray, near: float) -> np.ndarray:
    """X with each continuous value replaced by the number of its grid cell (NaN kept)."""
    G = X.copy()
    for j in np.flatnonzero(cont):
        d = space.params[j].dist
        t = np.log(np.maximum(G[:, j], 1e-300)) if d.log else G[:, j]
        G[:, j] = np.floor(t / (near * d.prior[1]))
    return G


_M32 = 0xFFFFFFFF


def _hash_consts(start: int, mult: int, n: int) -> tuple[int, ...]:
    out = [start]
    for _ in range(n):
        out.append(out[-1] * mult & _M32)
    return tuple(out)


_HASH_A = _hash_consts(0x43B0D7E5, 0x931E8875, 16)   # SeedSequence's mixing constants, in the order used
_HASH_B = _hash_consts(0x8B51F9DD, 0x58F38DED, 8)
_MIX_PAIRS = tuple((src, dst) for src in range(4) for dst in range(4) if src != dst)


class _SeedState(ISeedSequence):
    """The state `np.random.SeedSequence(seed)` gives a PCG64, for a seed below 2**32, computed in plain
    Python: NumPy's SeedSequence (whose algorithm NumPy keeps fixed across versions) costs tens of
    microseconds per suggestion after other work has evicted it from the caches, more than any other
    step of a suggestion."""

    __slots__ = ("words",)

    def __init__(self, seed: int) -> None:
        a = _HASH_A
        pool = []
        for i, value in enumerate((seed, 0, 0, 0)):
            value = (value ^ a[i]) * a[i + 1] & _M32
            pool.append(value ^ value >> 16)
        for k, (src, dst) in enumerate(_MIX_PAIRS, start=4):
            value = (pool[src] ^ a[k]) * a[k + 1] & _M32
            value ^= value >> 16
            mixed = (0xCA01F9DD * pool[dst] - 0x4973F715 * value) & _M32
            pool[dst] = mixed ^ mixed >> 16
        b = _HASH_B
        words = []
        for i in range(8):
            value = (pool[i % 4] ^ b[i]) * b[i + 1] & _M32
            words.append(value ^ value >> 16)
        self.words = [words[i] | words[i + 1] << 32 for i in range(0, 8, 2)]

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError("_SeedState only seeds a PCG64")
        return np.array(self.words, dtype=np.uint64)


def generator(seed: Any) -> np.random.Generator:
    """`np.random.default_rng(seed)`: the same stream, built faster for the int seeds fmin passes."""
    if type(seed) is int and 0 <= seed <= _M32:
        return np.random.Generator(np.random.PCG64(_SeedState(seed)))  # type: ignore[arg-type]  # a SeedSequence's duck
    return np.random.default_rng(seed)
