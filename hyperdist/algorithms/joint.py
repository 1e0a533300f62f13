"""Multivariate TPE for one group of parameters: product kernels over the group, all dimensions at once.

Each observation is one kernel over all the group's parameters (a product of the same 1-D kernels
the univariate mode uses), so l(x) and g(x) capture interactions. Numeric dimensions are rows of
(dimension x kernel) arrays, categorical ones are compared as codes, and the kernels of g(x)
beyond `max_components` are a subsample drawn in proportion to their weights: an unbiased,
bounded-cost estimate of the same mixture, which keeps a suggestion's cost flat in the history.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from ..distributions import Distribution
from .univariate import Mixtures, Table, adaptive_sigmas

_TINY = 1e-300


@dataclass
class JointMixture:
    table: Table | None          # numeric dimensions (None when the group has none)
    mu: np.ndarray               # P x M transformed centres (last column: prior)
    sigma: np.ndarray            # P x M
    codes: np.ndarray            # (M - 1) x Q observed option indices of the categorical dimensions
    priors: list[np.ndarray]     # Q prior probability vectors
    smoothing: float             # mass a categorical kernel spreads over the prior
    log_w: np.ndarray            # M

    @classmethod
    def fit(cls, numeric: list[Distribution], categorical: list[Distribution], X_num: np.ndarray,
            X_cat: np.ndarray, weights: np.ndarray, prior_weight: float, smoothing: float) -> "JointMixture":
        n = len(weights)
        table = Table.of(numeric) if numeric else None
        if table is not None:
            mu = np.concatenate([table.transform(X_num.T), table.prior_mu], axis=1)
            sigma = adaptive_sigmas(mu, table, np.full(len(numeric), float(n)))
            sigma[:, -1:] = table.prior_sigma
        else:
            mu = sigma = np.zeros((0, n + 1))
        w = np.append(weights, prior_weight)
        return cls(table, mu, sigma, X_cat.astype(np.intp), [np.asarray(d.args) for d in categorical], smoothing,
                   np.log(w / w.sum()))

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(numeric values P x size, categorical codes size x Q) drawn from the mixture."""
        cum = np.cumsum(np.exp(self.log_w))
        comp = np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), len(cum) - 1)
        nums = np.empty((len(self.mu), size))
        if self.table is not None:
            mu, sigma, t = self.mu[:, comp], self.sigma[:, comp], self.table
            a, b = ndtr((t.lo - mu) / sigma), ndtr((t.hi - mu) / sigma)
            v = np.clip(a + rng.random(mu.shape) * (b - a), 1e-16, 1 - 1e-16)
            nums = t.untransform(np.clip(mu + sigma * ndtri(v), t.lo, t.hi))
        cats = np.empty((size, len(self.priors)), dtype=np.intp)
        from_obs = (comp < len(self.codes)) & (rng.random(size) < 1.0 / (1.0 + self.smoothing))
        for q, prior in enumerate(self.priors):
            drawn = rng.choice(len(prior), size=size, p=prior)
            observed = self.codes[np.minimum(comp, len(self.codes) - 1), q] if len(self.codes) else drawn
            cats[:, q] = np.where(from_obs, observed, drawn)
        return nums, cats

    def log_pdf(self, nums: np.ndarray, cats: np.ndarray) -> np.ndarray:
        """log density of each candidate (numeric P x C, categorical C x Q), up to a constant."""
        total = np.broadcast_to(self.log_w, (cats.shape[0], len(self.log_w))).copy()
        if self.table is not None:
            t = self.table
            log_z = np.log(np.maximum(ndtr((t.hi - self.mu) / self.sigma) - ndtr((t.lo - self.mu) / self.sigma),
                                      _TINY))
            quantised = t.q[:, 0] > 0
            for rows in (np.flatnonzero(quantised), np.flatnonzero(~quantised)):
                if len(rows):
                    k = Mixtures._log_kernel(t.subset(rows), nums[rows], self.mu[rows], self.sigma[rows])
                    total += k.sum(axis=0)
            total -= log_z.sum(axis=0)
        s = self.smoothing
        for q, prior in enumerate(self.priors):
            c = cats[:, q]
            same = (c[:, None] == self.codes[None, :, q]).astype(float)
            data = np.log((same + s * prior[c][:, None]) / (1.0 + s))
            total += np.concatenate([data, np.log(prior[c])[:, None]], axis=1)
        top = total.max(axis=1, keepdims=True)
        return np.log(np.exp(total - top).sum(axis=1)) + top[:, 0]


def propose(dists: list[Distribution], X_b: np.ndarray, X_a: np.ndarray, w_a: np.ndarray,
            rng: np.random.Generator, prior_weight: float, n_candidates: int, smoothing: float,
            max_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (C x d, values) for one group, and their scores log l(x) - log g(x)."""
    num = [k for k, d in enumerate(dists) if not d.categorical]
    cat = [k for k, d in enumerate(dists) if d.categorical]
    if len(X_a) > max_components:
        keep = rng.choice(len(X_a), size=max_components, replace=False, p=w_a / w_a.sum())
        X_a, w_a = X_a[keep], np.full(max_components, w_a.sum() / max_components)
    split = ([dists[k] for k in num], [dists[k] for k in cat])
    l_mix = JointMixture.fit(*split, X_b[:, num], X_b[:, cat], np.ones(len(X_b)), prior_weight, smoothing)
    g_mix = JointMixture.fit(*split, X_a[:, num], X_a[:, cat], w_a, prior_weight, smoothing)
    nums, cats = l_mix.sample(rng, n_candidates)
    cand = np.empty((n_candidates, len(dists)))
    cand[:, num], cand[:, cat] = nums.T, cats
    return cand, l_mix.log_pdf(nums, cats) - g_mix.log_pdf(nums, cats)
