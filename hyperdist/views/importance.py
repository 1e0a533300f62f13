"""Which parameters matter: main-effect (first-order) sensitivity of the loss to each parameter.

For each parameter, the share of the variance of the loss explained by that parameter alone,
Var(E[y | x_j]) / Var(y) (the first-order Sobol index, or correlation ratio), estimated from the
history by grouping trials: categorical values are their own groups, numeric values are cut into
quantile bins (in log space for log families). The loss is rank-transformed first, so one huge
loss cannot dominate. Grouping inflates the ratio by about (G - 1) / (n - 1) even when a parameter
does nothing; that expected share is subtracted, as in adjusted R^2. A conditional parameter is
scored on the trials where it was active and weighted by how often it was.
"""
from __future__ import annotations

import numpy as np

from hyperdist.space.compiled import SearchSpace


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank: scipy.stats.rankdata's default, in numpy,
    because importing scipy.stats would cost every `hyperdist status` several times the rest of
    the command."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]


def importances(space: SearchSpace, X: np.ndarray, loss: np.ndarray, max_bins: int = 10) -> dict[str, float]:
    """label -> adjusted main-effect share of the loss variance, in [0, 1]; needs finished ok trials."""
    ok = np.isfinite(loss)
    X, y = X[ok], rankdata(loss[ok]) / max(1, ok.sum())
    out: dict[str, float] = {}
    for j, spec in enumerate(space.params):
        active = ~np.isnan(X[:, j])
        n = int(active.sum())
        if n < 8:
            continue
        x, yj = X[active, j], y[active]
        groups = _groups(x, spec.dist.categorical, spec.dist.log, min(max_bins, n // 4))
        out[spec.label] = _adjusted_ratio(groups, yj) * n / len(y)
    return out


def _groups(x: np.ndarray, categorical: bool, log: bool, bins: int) -> np.ndarray:
    values = np.unique(x)
    if categorical or len(values) <= bins:
        return np.searchsorted(values, x)
    t = np.log(np.maximum(x, 1e-300)) if log else x
    edges = np.unique(np.quantile(t, np.linspace(0, 1, bins + 1))[1:-1])
    return np.searchsorted(edges, t, side="right")


def _adjusted_ratio(groups: np.ndarray, y: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if total == 0 or len(labels) < 2:
        return 0.0
    means = np.bincount(inverse, weights=y) / counts
    ratio = float((counts * (means - y.mean()) ** 2).sum() / total)
    chance = (len(labels) - 1) / (len(y) - 1)
    return max(0.0, (ratio - chance) / (1 - chance)) if chance < 1 else 0.0
