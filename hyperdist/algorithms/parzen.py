"""Parzen-window mixtures over one or more parameters: the l(x) and g(x) densities of TPE.

Each observation contributes one kernel (a product over parameters), and the prior contributes one
more, weighted by `prior_weight` (Bergstra et al. 2011). Numeric parameters use Gaussian kernels
in transformed space (log for log families), truncated to the bounds of uniform families; their
bandwidths follow the adaptive rule of the 2011 paper (the larger gap to a sorted neighbour,
clipped to [prior_sigma / min(100, n + 1), prior_sigma]). A quantised value is scored by the
probability mass of its rounding bucket, so densities of discrete values are comparable.
Categorical parameters use a kernel that puts its mass on the observed option, optionally
smoothed toward the prior (Watanabe 2023 discusses both choices).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from ..distributions import Distribution

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_TINY = 1e-300


def to_transformed(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """Values -> the space kernels live in (log for log families), kept within the bounds."""
    t = np.log(np.maximum(x, _TINY)) if dist.log else np.asarray(x, dtype=float)
    if dist.bounded:
        lo, hi = dist.transformed_bounds
        t = np.clip(t, lo, hi)
    return t


def adaptive_sigmas(mus: np.ndarray, prior_mu: float, prior_sigma: float, n_data: int | None = None) -> np.ndarray:
    """Bandwidth per observation: the larger gap to its sorted neighbours (prior point included),
    clipped to [prior_sigma / min(100, n_data + 1), prior_sigma]."""
    n = len(mus)
    if n == 0:
        return np.empty(0)
    order = np.argsort(mus)
    srt = mus[order]
    pos = np.searchsorted(srt, prior_mu)
    full = np.insert(srt, pos, prior_mu)
    gaps = np.diff(full)
    left = np.concatenate([[gaps[0]], gaps])
    right = np.concatenate([gaps, [gaps[-1]]])
    sig_full = np.maximum(left, right)
    sig_sorted = np.delete(sig_full, pos)
    sig = np.empty(n)
    sig[order] = sig_sorted
    return np.clip(sig, prior_sigma / min(100.0, (n if n_data is None else n_data) + 1.0), prior_sigma)


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(a))) along an axis; scipy's version costs more in overhead than in arithmetic here."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


@dataclass
class Mixture:
    """A weighted mixture of product kernels over the parameters `dists` (last component = prior)."""

    dists: list[Distribution]
    log_w: np.ndarray                 # (m,) normalised log weights
    mus: np.ndarray                   # (m, d) transformed centres (unused for categoricals)
    sigmas: np.ndarray                # (m, d) bandwidths (unused for categoricals)
    cat_probs: dict[int, np.ndarray]  # k -> (m, n_options) kernel probabilities of categorical k

    @classmethod
    def fit(
        cls,
        dists: list[Distribution],
        obs: np.ndarray,
        weights: np.ndarray,
        prior_weight: float,
        cat_smoothing: float = 0.0,
        max_components: int | None = None,
    ) -> "Mixture":
        """Kernels on `obs` (n x d) with `weights`, plus the prior; 1-D mixtures of more than
        `max_components` kernels are compressed (see `_compress_1d`)."""
        n, d = obs.shape
        compress = d == 1 and max_components is not None and n > max_components
        mus = np.zeros((n + 1, d))
        sigmas = np.ones((n + 1, d))
        cat_probs = {}
        for k, dist in enumerate(dists):
            if dist.categorical:
                prior = np.asarray(dist.args)
                probs = np.empty((n + 1, dist.n_options))
                probs[:n] = cat_smoothing * prior
                probs[np.arange(n), obs[:, k].astype(int)] += 1.0
                probs[:n] /= 1.0 + cat_smoothing
                probs[n] = prior
                cat_probs[k] = probs
                continue
            prior_mu, prior_sigma = dist.prior
            mus[:n, k], mus[n, k] = to_transformed(dist, obs[:, k]), prior_mu
            sigmas[n, k] = prior_sigma
            if not compress:
                sigmas[:n, k] = adaptive_sigmas(mus[:n, k], prior_mu, prior_sigma)
        w = np.concatenate([weights, [prior_weight]])
        mixture = cls(list(dists), np.log(w / w.sum()), mus, sigmas, cat_probs)
        if compress:
            mixture._compress_1d(max_components)
        return mixture

    def _compress_1d(self, k_max: int) -> None:
        """Replace the data kernels of a 1-D mixture by at most `k_max` binned kernels (prior apart).

        A categorical mixture of one-hot kernels is exactly one kernel holding the weighted option
        frequencies. Numeric kernels are pooled into `k_max` equal-width bins (O(n), no sort); each
        non-empty bin becomes one kernel with the bin's weight and mean, and a bandwidth from the
        adaptive rule applied to the bin means plus the spread inside the bin. Bins are narrower
        than the smallest bandwidth the exact rule allows (prior_sigma / 100), so the pooled g(x)
        keeps the resolution of the exact one while a suggestion costs O(k_max) per candidate.
        """
        w = np.exp(self.log_w[:-1])
        prior_log_w = self.log_w[-1:]
        if self.dists[0].categorical:
            probs = self.cat_probs[0]
            self.cat_probs[0] = np.vstack([(w[:, None] * probs[:-1]).sum(axis=0) / w.sum(), probs[-1]])
            self.mus, self.sigmas = self.mus[[0, -1]], self.sigmas[[0, -1]]
            self.log_w = np.concatenate([[np.log(w.sum())], prior_log_w])
            return
        t = self.mus[:-1, 0]
        prior_mu, prior_sigma = self.mus[-1, 0], self.sigmas[-1, 0]
        lo, hi = float(t.min()), float(t.max())
        span = max(hi - lo, 1e-12)
        b = np.minimum(((t - lo) / span * k_max).astype(np.intp), k_max - 1)
        W = np.bincount(b, weights=w, minlength=k_max)
        S1 = np.bincount(b, weights=w * t, minlength=k_max)
        S2 = np.bincount(b, weights=w * t * t, minlength=k_max)
        keep = W > 0
        W, S1, S2 = W[keep], S1[keep], S2[keep]
        M = S1 / W
        V = np.maximum(S2 / W - M * M, 0.0)
        sig = np.sqrt(adaptive_sigmas(M, prior_mu, prior_sigma, n_data=len(t)) ** 2 + V)
        self.mus = np.concatenate([M, [prior_mu]])[:, None]
        self.sigmas = np.minimum(np.concatenate([sig, [prior_sigma]]), prior_sigma)[:, None]
        self.log_w = np.concatenate([np.log(W), prior_log_w])

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw `size` points (values, not transformed) from the mixture."""
        cum_w = np.cumsum(np.exp(self.log_w))
        comp = np.minimum(np.searchsorted(cum_w, rng.random(size) * cum_w[-1], side="right"), len(cum_w) - 1)
        out = np.empty((size, len(self.dists)))
        for k, dist in enumerate(self.dists):
            if dist.categorical:
                cum = np.cumsum(self.cat_probs[k][comp], axis=1)
                u = rng.random(size)[:, None] * cum[:, -1:]
                out[:, k] = np.minimum((u >= cum).sum(axis=1), dist.n_options - 1)
                continue
            mu, sigma = self.mus[comp, k], self.sigmas[comp, k]
            if dist.bounded:
                lo, hi = dist.transformed_bounds
                a, b = ndtr((lo - mu) / sigma), ndtr((hi - mu) / sigma)
                u = a + rng.random(size) * (b - a)
                t = np.clip(mu + sigma * ndtri(np.clip(u, 1e-16, 1 - 1e-16)), lo, hi)
            else:
                t = rng.normal(mu, sigma)
            out[:, k] = dist.from_transformed(t)
        return out

    def log_pdf(self, X: np.ndarray) -> np.ndarray:
        """log density (log mass for discrete parameters) of each row of X, up to a shared constant."""
        total = self.log_w[None, :] + self._log_kernel(0, self.dists[0], X[:, 0])
        for k in range(1, len(self.dists)):
            total += self._log_kernel(k, self.dists[k], X[:, k])
        return logsumexp(total, axis=1)

    def _log_kernel(self, k: int, dist: Distribution, x: np.ndarray) -> np.ndarray:
        if dist.categorical:
            return np.log(np.maximum(self.cat_probs[k][:, x.astype(int)].T, _TINY))
        mu, sigma = self.mus[:, k], self.sigmas[:, k]
        if dist.bounded:
            lo, hi = dist.transformed_bounds
            log_z = np.log(np.maximum(ndtr((hi - mu) / sigma) - ndtr((lo - mu) / sigma), _TINY))
        else:
            log_z = 0.0
        q = dist.q
        if q:
            vlo, vhi = dist.value_bounds()
            t_lo = to_transformed(dist, np.maximum(x - q / 2, vlo - q / 2 if dist.integer else -np.inf))
            t_hi = to_transformed(dist, np.minimum(x + q / 2, vhi + q / 2 if dist.integer else np.inf))
            mass = ndtr((t_hi[:, None] - mu) / sigma) - ndtr((t_lo[:, None] - mu) / sigma)
            return np.log(np.maximum(mass, _TINY)) - log_z
        z = (to_transformed(dist, x)[:, None] - mu) / sigma
        return -0.5 * z * z - (np.log(sigma) + _LOG_SQRT_2PI + log_z)
