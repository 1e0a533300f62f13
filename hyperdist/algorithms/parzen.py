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

from dataclasses import dataclass

import numpy as np
from hyperdist.algorithms.special import ndtr, ndtri  # scipy.special, imported on first call (special.py)

from hyperdist.algorithms.plan import Plan


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

