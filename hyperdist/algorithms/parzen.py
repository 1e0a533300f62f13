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
from scipy.special import logsumexp, ndtr, ndtri

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


def adaptive_sigmas(mus: np.ndarray, prior_mu: float, prior_sigma: float) -> np.ndarray:
    """Bandwidth per observation: the larger gap to its sorted neighbours (prior point included)."""
    n = len(mus)
    if n == 0:
        return np.empty(0)
    order = np.argsort(mus, kind="stable")
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
    return np.clip(sig, prior_sigma / min(100.0, n + 1.0), prior_sigma)


@dataclass
class Mixture:
    """A weighted mixture of product kernels over the parameters `dists` (last component = prior)."""

    dists: list[Distribution]
    log_w: np.ndarray            # (m,)
    mus: np.ndarray              # (m, d) transformed centres; option index for categoricals
    sigmas: np.ndarray           # (m, d); unused for categoricals
    cat_smoothing: float         # mass spread over all options by a categorical kernel

    @classmethod
    def fit(
        cls,
        dists: list[Distribution],
        obs: np.ndarray,
        weights: np.ndarray,
        prior_weight: float,
        cat_smoothing: float = 0.0,
    ) -> "Mixture":
        n, d = obs.shape
        mus = np.empty((n + 1, d))
        sigmas = np.ones((n + 1, d))
        for k, dist in enumerate(dists):
            if dist.categorical:
                mus[:n, k] = obs[:, k]
                mus[n, k] = -1  # the prior component: categorical prior probabilities
                continue
            prior_mu, prior_sigma = dist.prior
            t = to_transformed(dist, obs[:, k])
            mus[:n, k], mus[n, k] = t, prior_mu
            sigmas[:n, k], sigmas[n, k] = adaptive_sigmas(t, prior_mu, prior_sigma), prior_sigma
        w = np.concatenate([weights, [prior_weight]])
        return cls(list(dists), np.log(w / w.sum()), mus, sigmas, cat_smoothing)

    def _cat_probs(self, k: int) -> np.ndarray:
        """(m, n_options) probabilities of each component's kernel on categorical parameter k."""
        dist = self.dists[k]
        prior = np.asarray(dist.args)
        m = len(self.log_w)
        probs = np.tile(prior, (m, 1))
        obs = self.mus[:-1, k].astype(int)
        onehot = np.zeros((m - 1, dist.n_options))
        onehot[np.arange(m - 1), obs] = 1.0
        s = self.cat_smoothing
        probs[:-1] = (onehot + s * prior) / (1.0 + s)
        return probs

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw `size` points (values, not transformed) from the mixture."""
        comp = rng.choice(len(self.log_w), size=size, p=np.exp(self.log_w - logsumexp(self.log_w)))
        out = np.empty((size, len(self.dists)))
        for k, dist in enumerate(self.dists):
            if dist.categorical:
                cum = np.cumsum(self._cat_probs(k)[comp], axis=1)
                u = rng.random(size)[:, None] * cum[:, -1:]
                out[:, k] = (u > cum).sum(axis=1)
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
        total = np.broadcast_to(self.log_w, (len(X), len(self.log_w))).copy()
        for k, dist in enumerate(self.dists):
            total += self._log_kernel(k, dist, X[:, k])
        return logsumexp(total, axis=1)

    def _log_kernel(self, k: int, dist: Distribution, x: np.ndarray) -> np.ndarray:
        if dist.categorical:
            return np.log(np.maximum(self._cat_probs(k)[:, x.astype(int)].T, _TINY))
        mu, sigma = self.mus[:, k], self.sigmas[:, k]
        if dist.bounded:
            lo, hi = dist.transformed_bounds
            log_z = np.log(np.maximum(ndtr((hi - mu) / sigma) - ndtr((lo - mu) / sigma), _TINY))
        else:
            log_z = np.zeros_like(mu)
        q = dist.q
        if q:
            vlo, vhi = dist.value_bounds()
            t_lo = to_transformed(dist, np.maximum(x - q / 2, vlo - q / 2 if dist.integer else -np.inf))
            t_hi = to_transformed(dist, np.minimum(x + q / 2, vhi + q / 2 if dist.integer else np.inf))
            mass = ndtr((t_hi[:, None] - mu) / sigma) - ndtr((t_lo[:, None] - mu) / sigma)
            return np.log(np.maximum(mass, _TINY)) - log_z
        z = (to_transformed(dist, x)[:, None] - mu) / sigma
        return -0.5 * z * z - np.log(sigma) - _LOG_SQRT_2PI - log_z
