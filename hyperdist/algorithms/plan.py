"""The plan of a space for TPE's batched Parzen mixtures: its dimensions, groups and priors as arrays.

A *group* is a set of dimensions sharing kernels: one parameter (univariate mode, Hyperopt's) or the
parameters active under the same branches (multivariate mode, product kernels). The plan orders the
dimensions so that every kind (continuous, quantised, categorical) is a contiguous block of rows, and
holds the constants that fitting (parzen.py) and scoring (scoring.py) read on every suggestion; it is
built once per space and mode.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hyperdist.space.compiled import ParamSpec

TINY = 1e-300  # floor of values whose log is taken


def _col(values: list) -> np.ndarray:
    return np.array(values, dtype=float).reshape(-1, 1)


@dataclass(frozen=True)
class Plan:
    """The constants of a space in one mode (P numeric, Q categorical dimensions, G groups).

    Dimensions are ordered continuous, quantised, categorical (and the log families last within
    each numeric kind), so every kind is a contiguous block of rows: the large arrays are written
    in place through slices, never through fancy indexing.
    """

    cols: np.ndarray            # D: the space column of each dimension
    n_cont: int                 # continuous numeric dimensions come first ...
    n_num: int                  # ... then quantised ones; categorical from n_num on
    log_rows: tuple             # (start, stop) ranges of the numeric rows of log families
    group: np.ndarray           # D: group of each dimension
    lead: np.ndarray            # G: a column per group, NaN there = the group is inactive
    member: np.ndarray | None   # G x D indicator; None when every dimension is its own group
    q: np.ndarray               # numeric constants, P x 1: quantum (0 if none), ...
    lo: np.ndarray              # ... transformed bounds (infinite for the normal families), ...
    hi: np.ndarray
    vlo: np.ndarray             # ... value bounds of the integer families (else infinite), ...
    vhi: np.ndarray
    prior_mu: np.ndarray        # ... and the prior, in transformed space
    prior_sigma: np.ndarray
    prior: np.ndarray           # Q x K option probabilities, zero-padded
    cum_prior: np.ndarray       # Q x K
    last_option: np.ndarray     # Q x 1 last option of positive probability (guards against round-off)
    dims: np.ndarray            # D x 1: 0, 1, ..., D - 1 (an index into rows)

    @property
    def n_groups(self) -> int:
        return len(self.lead)

    def transform(self, x: np.ndarray, first: int = 0) -> np.ndarray:
        """Values of numeric rows first, first + 1, ... to transformed space, in place (NaN kept)."""
        for a, b in self.log_rows:
            seg = x[max(a - first, 0):max(b - first, 0)]
            np.log(np.maximum(seg, TINY, out=seg), out=seg)
        rows = slice(first, first + len(x))
        return np.minimum(np.maximum(x, self.lo[rows], out=x), self.hi[rows], out=x)

    def bucket_edges(self, x: np.ndarray) -> np.ndarray:
        """The rounding buckets of the quantised values x (quantised rows x C), as transformed edges
        (rows x 2C: lower edges, then upper ones), clipped to the support."""
        Pc, P, C = self.n_cont, self.n_num, x.shape[1]
        half = self.q[Pc:P] / 2
        edges = np.empty((len(x), 2 * C))
        np.maximum(np.subtract(x, half, out=edges[:, :C]), self.vlo[Pc:P] - half, out=edges[:, :C])
        np.minimum(np.add(x, half, out=edges[:, C:]), self.vhi[Pc:P] + half, out=edges[:, C:])
        return self.transform(edges, Pc)

    def untransform(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Transformed draws (P x n) to values in x: exp for the log families, then quantised and clipped."""
        np.copyto(x, t)
        for a, b in self.log_rows:
            np.exp(np.minimum(x[a:b], 700, out=x[a:b]), out=x[a:b])
        quantised = x[self.n_cont:]
        q = self.q[self.n_cont:]
        np.multiply(np.rint(np.divide(quantised, q, out=quantised), out=quantised), q, out=quantised)
        return np.minimum(np.maximum(x, self.vlo, out=x), self.vhi, out=x)


@functools.lru_cache(maxsize=64)
def plan(params: tuple[ParamSpec, ...], multivariate: bool) -> Plan:
    """Built once per space and mode (ParamSpec is frozen, so the cache key is the space itself)."""
    def kind(j: int) -> tuple:
        d = params[j].dist
        return (2 if d.categorical else 1 if d.q else 0), d.log, j
    cols = np.array(sorted(range(len(params)), key=kind), dtype=np.intp)
    keys = [params[j].conditions if multivariate else j for j in cols]
    first = {k: i for i, k in enumerate(dict.fromkeys(keys))}  # groups numbered in dimension order
    group = np.array([first[k] for k in keys], dtype=np.intp)
    G, D = len(first), len(cols)
    lead = np.array([cols[np.argmax(group == g)] for g in range(G)], dtype=np.intp)
    member = None if G == D else (group[None, :] == np.arange(G)[:, None]).astype(float)
    num = [params[j].dist for j in cols if not params[j].dist.categorical]
    cat = [params[j].dist for j in cols if params[j].dist.categorical]
    n_cont = sum(1 for d in num if not d.q)
    log_rows = tuple((a + sum(1 for d in part if not d.log), a + len(part))
                     for a, part in ((0, num[:n_cont]), (n_cont, num[n_cont:])))
    bounds = [d.transformed_bounds if d.bounded else (-np.inf, np.inf) for d in num]
    vbounds = [d.value_bounds() if d.integer else (-np.inf, np.inf) for d in num]
    prior = np.zeros((len(cat), max((d.n_options for d in cat), default=1)))
    for i, d in enumerate(cat):
        prior[i, :d.n_options] = d.args
    last_option = prior.shape[1] - 1 - np.argmax(prior[:, ::-1] > 0, axis=1)[:, None]
    return Plan(cols, n_cont, len(num), log_rows, group, lead, member, _col([d.q or 0.0 for d in num]),
                _col([b[0] for b in bounds]), _col([b[1] for b in bounds]), _col([b[0] for b in vbounds]),
                _col([b[1] for b in vbounds]), _col([d.prior[0] for d in num]), _col([d.prior[1] for d in num]),
                prior, np.cumsum(prior, axis=1), last_option, np.arange(len(cols))[:, None])

