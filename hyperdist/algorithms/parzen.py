"""Parzen estimators for TPE, batched over every parameter group of a space.

The model (Bergstra et al. 2011): in transformed space (log for the log families) one Gaussian
kernel per observation plus a prior kernel N(prior_mu, prior_sigma) of weight `prior_weight`;
adaptive bandwidths (the larger gap to a sorted neighbour, clipped to
[prior_sigma / min(100, n + 1), prior_sigma]); kernels truncated to the bounds of the uniform
families; a quantised value scored by the mass of its rounding bucket. A categorical kernel puts
1 / (1 + s) on the observed option and s / (1 + s) on the prior (s = 0: plain frequencies).

Why batched: fitting and scoring one small mixture per parameter costs dozens of numpy calls each,
which dominated a suggestion. Here a *group* is a set of dimensions sharing kernels: one parameter
(univariate mode, Hyperopt's) or the parameters active under the same branches (multivariate mode,
product kernels). Every dimension is a row of padded (row x kernel) arrays whose padding has
log-weight -inf, and l(x) and g(x) sit side by side in one array, so fitting, sampling and
scoring a whole space takes a fixed number of vectorised calls, whatever its size.
"""
from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
from hyperdist.algorithms.special import ndtr, ndtri  # scipy.special, imported on first call (special.py)

from hyperdist.space.compiled import ParamSpec

_TINY = 1e-300
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


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
            np.log(np.maximum(seg, _TINY, out=seg), out=seg)
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


@dataclass
class Mixture:
    """Padded mixtures of all groups; the first kernel of each row is the prior's."""

    mu: np.ndarray      # P x M transformed centres
    sigma: np.ndarray   # P x M
    codes: np.ndarray   # Q x M option of each kernel, -1 for the prior's (and padding)
    log_w: np.ndarray   # G x M normalised log weights, -inf for padding


def adaptive_sigmas(mu: np.ndarray, prior_sigma: np.ndarray, n_data: np.ndarray) -> np.ndarray:
    """Row-wise adaptive bandwidths; `mu` is P x M, prior centre first, NaN padding (sorted last).

    The sort is stable, so ties (quantised values) are broken as Hyperopt does: the prior before
    equal observations.
    """
    if mu.shape[1] == 1:
        return prior_sigma.copy()
    order = mu.argsort(axis=1, kind="stable")
    order += np.arange(0, mu.size, mu.shape[1])[:, None]  # flat indices: cheaper than *_along_axis
    srt = mu.take(order)
    gaps = srt[:, 1:] - srt[:, :-1]
    # the larger gap to a neighbour; fmax falls back to the other side next to padding (NaN gaps);
    # written in sorted order into srt, which is no longer needed
    srt[:, 0] = gaps[:, 0]
    srt[:, -1] = gaps[:, -1]
    np.fmax(gaps[:, :-1], gaps[:, 1:], out=srt[:, 1:-1])
    sig = np.empty_like(mu)
    sig.put(order, srt)
    min_sigma = prior_sigma / np.minimum(100.0, n_data + 1.0)[:, None]
    np.maximum(sig, min_sigma, out=sig)  # NaN (padding) stays NaN
    np.minimum(sig, prior_sigma, out=sig)
    sig[:, 0] = prior_sigma[:, 0]
    return sig


def fit(p: Plan, X: np.ndarray, rows: np.ndarray, w: np.ndarray, prior_weight: float) -> Mixture:
    """One kernel per row of X: rows is G x r (each group its own rows) or 1 x r (the same rows for
    all groups), w is G x r (0 = padding)."""
    P = p.n_num
    V = X[rows[p.group] if len(rows) > 1 else rows, p.cols[:, None]]  # D x r values
    unused = w[p.group] <= 0
    V[unused] = np.nan
    mu = np.empty((P, V.shape[1] + 1))
    mu[:, :1] = p.prior_mu
    mu[:, 1:] = p.transform(V[:P])
    sigma = adaptive_sigmas(mu, p.prior_sigma, V.shape[1] - unused[:P].sum(axis=1))
    codes = np.full((len(V) - P, V.shape[1] + 1), -1, dtype=np.intp)
    cat = V[P:]
    codes[:, 1:] = np.where(np.isnan(cat), -1.0, cat)
    return _finish(p, mu, sigma, codes, w, prior_weight)


def fit_pair(p: Plan, X: np.ndarray, below: tuple[np.ndarray, np.ndarray], above: tuple[np.ndarray, np.ndarray],
             prior_weight: float) -> tuple[Mixture, int]:
    """`fit` of two sets of (rows, w) at once, l(x) and g(x), returned as one mixture with l's M_l
    kernels first (`join`), and M_l. The same result as two `fit` calls, with one gather, one transform
    and one bandwidth sort for both (a suggestion's fixed cost is mostly the number of numpy calls).

    Layout: each dimension is a row of 2R columns, R = 1 + the larger kernel count; l's prior and
    kernels end at column R (NaN padding before them), g's start there (padding after), so that the
    bandwidth sort sees each mixture in a row of its own and the joined mixture is a plain slice.
    """
    P, G = p.n_num, p.n_groups
    (rows_l, w_l), (rows_g, w_g) = below, above
    r_l, r_g = w_l.shape[1], w_g.shape[1]
    R = max(r_l, r_g) + 1
    a, b = R - 1 - r_l, R + 1 + r_g                      # the joined mixture: columns a:b
    idx = np.zeros((len(p.cols), 2 * R), dtype=np.intp)
    idx[:, a + 1:R] = rows_l[p.group] if len(rows_l) > 1 else rows_l
    idx[:, R + 1:b] = rows_g[p.group] if len(rows_g) > 1 else rows_g
    w = np.zeros((G, 2 * R))
    w[:, a] = w[:, R] = prior_weight
    w[:, a + 1:R] = w_l
    w[:, R + 1:b] = w_g
    V = X[idx, p.cols[:, None]]                                        # D x 2R values
    unused = w[p.group] <= 0
    V[unused] = np.nan
    mu = p.transform(V[:P])
    mu[:, a] = mu[:, R] = p.prior_mu[:, 0]
    n_data = R - 1 - np.add.reduce(unused[:P].reshape(2 * P, R), axis=1)
    sigma = adaptive_sigmas(mu.reshape(2 * P, R), p.prior_sigma.repeat(2, axis=0), n_data).reshape(P, 2 * R)
    sigma[:, a] = p.prior_sigma[:, 0]
    codes = np.fmax(V[P:], -1.0).astype(np.intp)                      # NaN (unused) -> -1
    codes[:, a] = codes[:, R] = -1
    w[:, a:R] /= np.add.reduce(w[:, a:R], axis=1, keepdims=True)  # ufunc methods: the ndarray ones are Python
    w[:, R:b] /= np.add.reduce(w[:, R:b], axis=1, keepdims=True)
    log_w = np.empty(w.shape)
    log_w.fill(-np.inf)
    np.log(w, out=log_w, where=w > 0)
    pad = np.isnan(mu)
    np.copyto(mu, p.prior_mu, where=pad)
    np.copyto(sigma, p.prior_sigma, where=pad)
    return Mixture(mu[:, a:b], sigma[:, a:b], codes[:, a:b], log_w[:, a:b]), r_l + 1


def join(below: Mixture, above: Mixture) -> tuple[Mixture, int]:
    """l and g as one mixture (l's kernels first), for `score`, and l's kernel count."""
    return Mixture(*(np.concatenate([x, y], axis=1) for x, y in
                     ((below.mu, above.mu), (below.sigma, above.sigma), (below.codes, above.codes),
                      (below.log_w, above.log_w)))), below.mu.shape[1]


def split(both: Mixture, m: int) -> Mixture:
    """The first m kernels of a joined mixture (l), as views."""
    return Mixture(both.mu[:, :m], both.sigma[:, :m], both.codes[:, :m], both.log_w[:, :m])


def fit_binned(p: Plan, X: np.ndarray, w: np.ndarray, prior_weight: float, k: int) -> Mixture:
    """Univariate mode, long histories: w is D x n (0 = not in the mixture); numeric dimensions are
    pooled into k equal-width bins, categorical ones into their options (exact).

    Each non-empty bin is one kernel with the bin's weight and mean, and a bandwidth from the
    adaptive rule over the bin means plus the spread inside the bin. Bins are narrower than the
    smallest bandwidth the exact rule allows (prior_sigma / 100), so g(x) keeps its resolution at a
    cost that no longer grows with the history (binning is O(n), no sort).
    """
    P, Q = p.n_num, len(p.cols) - p.n_num
    width = max(k, p.prior.shape[1])
    V = X.T[p.cols]                                                    # D x n
    T = p.transform(V[:P])
    tmin, tmax = np.fmin.reduce(T, axis=1, keepdims=True), np.fmax.reduce(T, axis=1, keepdims=True)
    T -= tmin                                                          # offsets keep S2 precise
    np.fmax(T, 0.0, out=T)                                             # inactive (NaN, weight 0) -> 0
    idx = np.multiply(T, k / np.maximum(tmax - tmin, 1e-12), out=np.empty(T.shape, np.intp), casting="unsafe")
    np.minimum(idx, k - 1, out=idx)
    idx += np.arange(P)[:, None] * width
    idx = idx.ravel()
    wn = w[:P]
    n_data = (wn > 0).sum(axis=1)
    W = np.bincount(idx, wn.ravel(), P * width).reshape(P, width)
    wt = wn * T
    S1 = np.bincount(idx, wt.ravel(), P * width).reshape(P, width)
    wt *= T
    S2 = np.bincount(idx, wt.ravel(), P * width).reshape(P, width)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = S1 / W                                                  # NaN for empty bins: padding
        var = np.where(W > 0, np.maximum(S2 / W - mean * mean, 0.0), 0.0)
    mu = np.concatenate([p.prior_mu, mean + tmin], axis=1)
    sigma = adaptive_sigmas(mu, p.prior_sigma, n_data)
    sigma[:, 1:] = np.minimum(np.sqrt(sigma[:, 1:] ** 2 + var), p.prior_sigma)
    opt = np.nan_to_num(V[P:]).astype(np.intp) + np.arange(Q)[:, None] * width  # inactive: weight 0
    counts = np.bincount(opt.ravel(), w[P:].ravel(), Q * width).reshape(Q, width)
    codes = np.broadcast_to(np.arange(-1, width), (Q, width + 1))
    return _finish(p, mu, sigma, codes, np.concatenate([W, counts]), prior_weight)


def _finish(p: Plan, mu: np.ndarray, sigma: np.ndarray, codes: np.ndarray, w: np.ndarray,
            prior_weight: float) -> Mixture:
    """Normalised log weights (prior kernel first); padding kernels (NaN centre) get the prior's
    centre and bandwidth, so that every later computation stays finite. mu and sigma are updated in
    place."""
    full = np.empty((len(w), w.shape[1] + 1))
    full[:, 0] = prior_weight
    full[:, 1:] = w
    full /= full.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_w = np.log(full, out=full)
    pad = np.isnan(mu)
    np.copyto(mu, p.prior_mu, where=pad)
    np.copyto(sigma, p.prior_sigma, where=pad)
    return Mixture(mu, sigma, codes, log_w)


def sample(p: Plan, mix: Mixture, rng: np.random.Generator, size: int,
           smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """`size` draws per group: (values D x size, continuous ones in transformed space n_cont x size)."""
    P, Q, G = p.n_num, len(mix.codes), p.n_groups
    # all uniforms in one call, the same stream as one call per use: kernels, numeric, prior options, prior
    u = rng.random((G + P + 2 * Q) * size).reshape(-1, size)
    cum = np.exp(mix.log_w).cumsum(axis=1)
    pick = u[:G] * cum[:, -1:]
    kernel = np.minimum(np.add.reduce(pick[:, :, None] >= cum[:, None, :], axis=2), cum.shape[1] - 1)[p.group]
    rows = p.dims
    mu, sigma = mix.mu[rows[:P], kernel[:P]], mix.sigma[rows[:P], kernel[:P]]
    # truncated normal by inversion: uniform between the CDF values of the bounds
    ab = np.empty((2,) + mu.shape)
    np.divide(np.subtract(p.lo, mu, out=ab[0]), sigma, out=ab[0])
    np.divide(np.subtract(p.hi, mu, out=ab[1]), sigma, out=ab[1])
    a, b = ndtr(ab, out=ab)
    b -= a
    b *= u[G:G + P]
    b += a
    v = np.minimum(np.maximum(b, 1e-16, out=b), 1 - 1e-16, out=b)
    t = ndtri(v, out=v)
    t *= sigma
    t += mu
    np.minimum(np.maximum(t, p.lo, out=t), p.hi, out=t)
    values = np.empty((len(p.cols), size))
    p.untransform(t, values[:P])
    codes = mix.codes[rows[:Q], kernel[P:]]
    prior = np.minimum(np.add.reduce(u[G + P:G + P + Q, :, None] >= p.cum_prior[:, None, :], axis=2), p.last_option)
    from_prior = u[G + P + Q:] * (1 + smoothing) >= 1
    from_prior |= codes < 0
    values[P:] = np.where(from_prior, prior, codes)
    return values, t[:p.n_cont]


def score(p: Plan, both: Mixture, M_l: int, values: np.ndarray, t_cont: np.ndarray, smoothing: float,
          smoothing_g: float | None = None) -> np.ndarray:
    """log l(x) - log g(x) per group and candidate (G x C); `both` holds l's M_l kernels, then g's.

    Each dimension's log kernel values fill its rows of L (D x C x M); what depends on the kernel
    only (normalisers, weights) is summed per group on the small G x M array instead. The large
    arrays are updated in place: fresh ones would cost a page fault per 4 KiB, often more than the
    arithmetic.
    """
    P, Pc = p.n_num, p.n_cont
    mu = both.mu
    inv = 1.0 / both.sigma
    # truncation to [lo, hi], which holds every centre: 1 - both tails, each exact when small
    tails = np.empty((2,) + mu.shape)
    np.multiply(np.subtract(p.lo, mu, out=tails[0]), inv, out=tails[0])
    np.multiply(np.subtract(mu, p.hi, out=tails[1]), inv, out=tails[1])
    ndtr(tails, out=tails)
    const = tails[0]
    const += tails[1]
    np.negative(np.log1p(np.negative(const, out=const), out=const), out=const)
    L = _scratch((len(values), values.shape[1], mu.shape[1]))
    const[:Pc] += _continuous(L[:Pc], t_cont, mu[:Pc], inv[:Pc])
    if P > Pc:
        q = slice(Pc, P)
        _bucket_log_mass(L[q], values[q], p.bucket_edges(values[q]), mu[q], inv[q])
    if len(values) > P:
        _categorical(L[P:], p.prior, values[P:].astype(np.intp), both.codes, M_l, smoothing,
                     smoothing if smoothing_g is None else smoothing_g)
    if p.member is None:
        S = L
        log_w = both.log_w.copy()
        log_w[:P] += const
    else:
        S = np.dot(p.member, L.reshape(len(L), -1)).reshape(len(p.member), *L.shape[1:])  # = tensordot, less Python
        log_w = p.member[:, :P] @ const
        log_w += both.log_w
    S += log_w[:, None, :]
    return _log_ratio(S, M_l)


def _continuous(out: np.ndarray, t: np.ndarray, mu: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """log N(t; mu, sigma) for each candidate t (row x C) and kernel: the part that depends on t goes
    to `out`, the rest (row x M) is returned. Three elementwise passes: a matrix product (BLAS) would
    be one call, but its code is cold after other work and cost more than the passes."""
    np.subtract(t[:, :, None], mu[:, None, :], out=out)
    np.multiply(out, out, out=out)
    out *= (-0.5 * inv * inv)[:, None, :]
    return np.log(inv) - _HALF_LOG_2PI


def _bucket_log_mass(out: np.ndarray, x: np.ndarray, edges: np.ndarray, mu: np.ndarray, inv: np.ndarray) -> None:
    """log mass of each kernel (row x M) in the rounding bucket of each candidate value x (quantised
    rows x C), whose transformed edges are `edges` (row x 2C: lower ones, then upper ones), written to
    `out` (row x C x M).

    The normal CDF dominates a suggestion's cost, so it is evaluated once per distinct edge of a row
    (candidates repeat values, and neighbouring buckets share an edge: typically a third of the 2C
    edges are distinct), and only as the tail ndtr(-|z|), which keeps full relative precision far
    from a kernel on either side. The masses are then formed once per distinct value and copied to
    the candidates that share it.
    """
    C = x.shape[1]
    edge_id, distinct_edge, row_of = _distinct(edges)
    nz = mu[row_of]
    nz -= edges.take(distinct_edge)[:, None]
    nz *= inv[row_of]  # -z for each distinct edge and kernel
    # ndtr(z) = G + A, kept apart: G is the tail (signed), A is 1 where the edge lies above the centre;
    # mass = (G_hi - G_lo) + (A_hi - A_lo) is exact in both tails: the 1s cancel before they are added
    A = np.signbit(nz)
    G = np.abs(nz)
    np.negative(G, out=G)
    ndtr(G, out=G)
    np.copysign(G, nz, out=G)
    value_id, pick, _ = _distinct(x)  # pick: one candidate per distinct value
    lo, hi = edge_id[:, :C].take(pick), edge_id[:, C:].take(pick)
    mass = G[hi]
    mass -= G[lo]
    mass += A[hi] > A[lo]
    np.log(np.maximum(mass, _TINY, out=mass), out=mass)
    mass.take(value_id, axis=0, out=out)


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of each row of `a` (r x k), numbered across rows in row order: the number
    of each entry's value, and per distinct value the flat index of one entry holding it and its row."""
    order = a.argsort(axis=1)
    order += np.arange(0, a.size, a.shape[1])[:, None]  # flat indices: cheaper than *_along_axis
    srt = a.take(order)
    first = np.empty(a.shape, dtype=bool)
    first[:, 0] = True
    np.not_equal(srt[:, 1:], srt[:, :-1], out=first[:, 1:])
    ids = np.empty(a.shape, dtype=np.intp)
    ids.put(order, first.cumsum() - 1)  # ids never cross rows: each row starts anew
    return ids, order[first], first.nonzero()[0]


def _categorical(out: np.ndarray, prior: np.ndarray, c: np.ndarray, codes: np.ndarray, m_l: int,
                 smoothing: float, smoothing_g: float) -> None:
    """log((same + s * prior) / (1 + s)) per candidate option c (row x C) and kernel option, s = smoothing
    for l's m_l kernels and smoothing_g for g's; the prior's own kernels score the prior probability."""
    pc = prior[np.arange(len(c))[:, None], c][:, :, None]
    same = c[:, :, None] == codes[:, None, :]
    parts = [(out, same, smoothing)] if smoothing == smoothing_g else \
        [(out[:, :, :m_l], same[:, :, :m_l], smoothing), (out[:, :, m_l:], same[:, :, m_l:], smoothing_g)]
    for o, eq, s in parts:
        o[...] = np.log(np.maximum(s * pc, _TINY) / (1 + s))
        np.copyto(o, np.log((1 + s * pc) / (1 + s)), where=eq)
    out[:, :, [0, m_l]] = np.log(np.maximum(pc, _TINY))


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised array for score's per-dimension log densities, reused by the next call of this
    thread: a fresh one of a few hundred KiB came from newly mapped pages whenever the allocator had
    just returned memory to the system (long histories: up to a thousand page faults per suggestion).
    Nothing that score returns refers to it."""
    size = math.prod(shape)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < size:
        buf = _SCRATCH.buf = np.empty(size)
    return buf[:size].reshape(shape)


def _log_ratio(S: np.ndarray, m: int) -> np.ndarray:
    """logsumexp of the first m entries minus that of the rest, over the last axis, overwriting S.
    Terms are floored at e^-700 (nothing next to the top one, 1): exp is several times slower on
    arguments that underflow."""
    l, g = S[:, :, :m], S[:, :, m:]
    top_l, top_g = np.maximum.reduce(l, axis=2, keepdims=True), np.maximum.reduce(g, axis=2, keepdims=True)
    l -= top_l
    g -= top_g
    np.exp(np.maximum(S, -700.0, out=S), out=S)
    log_l = np.log(np.add.reduce(l, axis=2))
    log_l += top_l[:, :, 0]
    log_g = np.log(np.add.reduce(g, axis=2))
    log_g += top_g[:, :, 0]
    log_l -= log_g
    return log_l
