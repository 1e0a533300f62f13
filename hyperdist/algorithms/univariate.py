"""Univariate TPE for all numeric parameters at once: padded (parameter x kernel) arrays.

The default (Hyperopt-style) TPE fits one 1-D Parzen pair l(x), g(x) per parameter. Doing that one
parameter at a time costs a few dozen small numpy calls each, which dominates a suggestion. Here
every numeric parameter is a row of padded arrays (pads carry weight zero), so fitting, sampling
and scoring all of them is a fixed number of vectorised calls. The model (Bergstra et al. 2011):
a Gaussian kernel per observation in transformed space (log for log families) plus one for the
prior, weighted `prior_weight`; adaptive bandwidths (the larger gap to a sorted neighbour, clipped
to [prior_sigma / min(100, n + 1), prior_sigma]); truncation to the bounds of uniform families;
quantised values scored by the probability mass of their rounding bucket.

For long histories g(x) is pooled into `max_components` equal-width bins (O(n), no sort): each
non-empty bin becomes one kernel with the bin's weight and mean, and a bandwidth from the adaptive
rule over the bin means plus the spread inside the bin. Bins are narrower than the smallest
bandwidth the exact rule allows (prior_sigma / 100), so the pooled g(x) keeps its resolution.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from ..distributions import Distribution

_TINY = 1e-300
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass
class Table:
    """Per-parameter constants of the numeric parameters, as column vectors (P x 1)."""

    log: np.ndarray
    q: np.ndarray          # 0 where not quantised
    lo: np.ndarray         # transformed bounds; -inf/+inf for normal families
    hi: np.ndarray
    vlo: np.ndarray        # value bounds for integer families (clip), else -inf/+inf
    vhi: np.ndarray
    prior_mu: np.ndarray
    prior_sigma: np.ndarray

    @classmethod
    def of(cls, dists: list[Distribution]) -> "Table":
        return _table(tuple(dists))

    @classmethod
    def _build(cls, dists: tuple[Distribution, ...]) -> "Table":
        def col(values: list[float]) -> np.ndarray:
            return np.array(values, dtype=float)[:, None]
        bounds = [d.transformed_bounds if d.bounded else (-np.inf, np.inf) for d in dists]
        vbounds = [d.value_bounds() if d.integer else (-np.inf, np.inf) for d in dists]
        return cls(col([d.log for d in dists]).astype(bool), col([d.q or 0.0 for d in dists]),
                   col([b[0] for b in bounds]), col([b[1] for b in bounds]),
                   col([b[0] for b in vbounds]), col([b[1] for b in vbounds]),
                   col([d.prior[0] for d in dists]), col([d.prior[1] for d in dists]))

    def subset(self, rows: np.ndarray) -> "Table":
        return Table(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))

    def transform(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(self.log, np.log(np.maximum(x, _TINY)), x)
        return np.clip(t, self.lo, self.hi)

    def untransform(self, t: np.ndarray) -> np.ndarray:
        x = np.where(self.log, np.exp(np.minimum(t, 700)), t)
        x = np.where(self.q > 0, np.round(x / np.where(self.q > 0, self.q, 1)) * self.q, x)
        return np.clip(x, self.vlo, self.vhi)


@functools.lru_cache(maxsize=256)
def _table(dists: tuple[Distribution, ...]) -> Table:
    """Spaces are fixed for a search, so their constants are computed once (Distribution is frozen)."""
    return Table._build(dists)


@dataclass
class Mixtures:
    """P padded 1-D mixtures: centres, bandwidths, log weights (pads: -inf), each P x M."""

    mu: np.ndarray
    sigma: np.ndarray
    log_w: np.ndarray

    def sample(self, table: Table, rng: np.random.Generator, size: int) -> np.ndarray:
        w = np.exp(self.log_w - self.log_w.max(axis=1, keepdims=True))
        cum = np.cumsum(w, axis=1)
        u = rng.random((len(w), size)) * cum[:, -1:]
        comp = np.minimum((u[:, :, None] >= cum[:, None, :]).sum(axis=2), w.shape[1] - 1)
        mu = np.take_along_axis(self.mu, comp, axis=1)
        sigma = np.take_along_axis(self.sigma, comp, axis=1)
        a, b = ndtr((table.lo - mu) / sigma), ndtr((table.hi - mu) / sigma)
        v = np.clip(a + rng.random(mu.shape) * (b - a), 1e-16, 1 - 1e-16)
        return table.untransform(np.clip(mu + sigma * ndtri(v), table.lo, table.hi))

    def log_pdf(self, table: Table, x: np.ndarray) -> np.ndarray:
        """P x C log densities (log bucket mass for quantised parameters), up to a per-row constant."""
        log_z = np.log(np.maximum(ndtr((table.hi - self.mu) / self.sigma) - ndtr((table.lo - self.mu) / self.sigma),
                                  _TINY))
        total = np.empty((len(x), x.shape[1], self.mu.shape[1]))
        quantised = table.q[:, 0] > 0
        for rows in (np.flatnonzero(quantised), np.flatnonzero(~quantised)):
            if len(rows):
                total[rows] = self._log_kernel(table.subset(rows), x[rows], self.mu[rows], self.sigma[rows])
        total += (self.log_w - log_z)[:, None, :]
        top = total.max(axis=2, keepdims=True)
        return np.log(np.exp(total - top).sum(axis=2)) + top[:, :, 0]

    @staticmethod
    def _log_kernel(table: Table, x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        mu, sigma = mu[:, None, :], sigma[:, None, :]
        if table.q[0, 0] > 0:  # the rows are all quantised or all continuous
            half = table.q / 2
            t_lo = table.transform(np.maximum(x - half, np.where(np.isfinite(table.vlo), table.vlo - half, -np.inf)))
            t_hi = table.transform(np.minimum(x + half, np.where(np.isfinite(table.vhi), table.vhi + half, np.inf)))
            mass = ndtr((t_hi[:, :, None] - mu) / sigma) - ndtr((t_lo[:, :, None] - mu) / sigma)
            return np.log(np.maximum(mass, _TINY))
        z = (table.transform(x)[:, :, None] - mu) / sigma
        return -0.5 * z * z - np.log(sigma) - _LOG_SQRT_2PI


def adaptive_sigmas(mu: np.ndarray, table: Table, n_data: np.ndarray) -> np.ndarray:
    """Row-wise adaptive bandwidths; `mu` is P x M with NaN pads and the prior centre included."""
    if mu.shape[1] < 2:
        return np.broadcast_to(table.prior_sigma, mu.shape).copy()
    order = np.argsort(mu, axis=1)  # NaN pads sort last
    srt = np.take_along_axis(mu, order, axis=1)
    gaps = np.diff(srt, axis=1)
    left = np.concatenate([gaps[:, :1], gaps], axis=1)
    right = np.concatenate([gaps, gaps[:, -1:]], axis=1)
    right = np.where(np.isnan(right), left, right)
    sig_sorted = np.fmax(left, right)
    sig = np.empty_like(sig_sorted)
    np.put_along_axis(sig, order, sig_sorted, axis=1)
    min_sigma = table.prior_sigma / np.minimum(100.0, n_data + 1.0)[:, None]
    return np.clip(np.where(np.isnan(sig), table.prior_sigma, sig), min_sigma, table.prior_sigma)


def fit(table: Table, T: np.ndarray, weights: np.ndarray, prior_weight: float, max_components: int) -> Mixtures:
    """Mixtures from transformed observations T (n x P, NaN = inactive) with per-entry weights."""
    n, P = T.shape
    active = ~np.isnan(T)
    n_data = active.sum(axis=0).astype(float)
    if n > max_components:
        return _fit_binned(table, T, weights, active, n_data, prior_weight, max_components)
    mu = np.concatenate([T.T, table.prior_mu], axis=1)
    sigma = adaptive_sigmas(mu, table, n_data)
    sigma[:, -1:] = table.prior_sigma
    w = np.concatenate([np.where(active, weights, 0.0).T, np.full((P, 1), prior_weight)], axis=1)
    return _finish(mu, sigma, w)


def _fit_binned(table: Table, T: np.ndarray, weights: np.ndarray, active: np.ndarray, n_data: np.ndarray,
                prior_weight: float, k: int) -> Mixtures:
    """Pool each row's kernels into k equal-width bins (see the module docstring for why)."""
    P = T.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = np.nanmin(np.where(active, T, np.inf), axis=0), np.nanmax(np.where(active, T, -np.inf), axis=0)
        span = np.maximum(hi - lo, 1e-12)
        b = np.clip(((T - lo) / span * k), 0, k - 1)
    rows, cols = np.nonzero(active)
    idx = cols * k + b[rows, cols].astype(np.intp)
    t, w = T[rows, cols], weights[rows, cols]
    W = np.bincount(idx, weights=w, minlength=P * k).reshape(P, k)
    S1 = np.bincount(idx, weights=w * t, minlength=P * k).reshape(P, k)
    S2 = np.bincount(idx, weights=w * t * t, minlength=P * k).reshape(P, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        M = np.where(W > 0, S1 / W, np.nan)
        V = np.where(W > 0, np.maximum(S2 / W - M * M, 0.0), 0.0)
    mu = np.concatenate([M, table.prior_mu], axis=1)
    sigma = adaptive_sigmas(mu, table, n_data)
    sigma = np.minimum(np.sqrt(sigma ** 2 + np.concatenate([V, np.zeros((P, 1))], axis=1)), table.prior_sigma)
    sigma[:, -1:] = table.prior_sigma
    return _finish(mu, sigma, np.concatenate([W, np.full((P, 1), prior_weight)], axis=1))


def _finish(mu: np.ndarray, sigma: np.ndarray, w: np.ndarray) -> Mixtures:
    pad = ~(w > 0)
    with np.errstate(divide="ignore"):
        log_w = np.where(pad, -np.inf, np.log(np.where(pad, 1.0, w)))
    log_w -= np.log(np.exp(log_w).sum(axis=1, keepdims=True))
    return Mixtures(np.where(pad, 0.0, mu), np.where(pad, 1.0, sigma), log_w)
