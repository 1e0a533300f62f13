"""Scoring TPE's candidates: log l(x) - log g(x) per group, from the joined mixture of parzen.py.

The candidates' log kernel densities fill one (dimension x candidate x kernel) array, summed per group
and reduced by two logsumexps; continuous values are scored by their density, quantised ones by the
mass of their rounding bucket, categorical ones by the smoothed option frequencies.
"""
from __future__ import annotations

import math
import threading

import numpy as np
from hyperdist.algorithms.special import ndtr  # scipy.special, imported on first call (special.py)

from hyperdist.algorithms.parzen import Mixture
from hyperdist.algorithms.plan import TINY, Plan

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


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
    np.log(np.maximum(mass, TINY, out=mass), out=mass)
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
        o[...] = np.log(np.maximum(s * pc, TINY) / (1 + s))
        np.copyto(o, np.log((1 + s * pc) / (1 + s)), where=eq)
    out[:, :, [0, m_l]] = np.log(np.maximum(pc, TINY))


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
