"""Tree-structured Parzen Estimator (Bergstra et al. 2011; components as in Watanabe 2023).

Finished trials are split by loss into the best few ("below") and the rest ("above"). Trials still
being evaluated, and failed ones, join "above" with the worst possible loss (a constant liar), so
parallel workers are steered away from points already taken. For each group of parameters a
Parzen mixture l(x) is fitted to "below" and g(x) to "above"; candidates drawn from l are ranked
by log l(x) - log g(x) and the best one is proposed.

Groups: in the univariate mode (Hyperopt's) every parameter is its own group; in the
multivariate mode parameters that are active under the same branches form one group with joint
kernels, which captures interactions. Conditional parameters only ever see the trials in which
they were active.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..history import OK, PENDING, Observations
from ..space import SearchSpace
from .common import as_observations, as_space, discrete_keys, row_key
from .parzen import Mixture
from .rand import draw_unique

DEFAULTS: dict[str, Any] = {
    "prior_weight": 1.0,
    "n_startup_jobs": 20,
    "n_EI_candidates": 24,
    "gamma": 0.25,
    "linear_forgetting": 25,
    "multivariate": False,
    "max_components": 128,
}


def suggest(
    new_ids: Sequence[int],
    domain: Any,
    trials: Any,
    seed: Any,
    prior_weight: float = DEFAULTS["prior_weight"],
    n_startup_jobs: int = DEFAULTS["n_startup_jobs"],
    n_EI_candidates: int = DEFAULTS["n_EI_candidates"],
    gamma: float | Callable[[int], int] = DEFAULTS["gamma"],
    linear_forgetting: int = DEFAULTS["linear_forgetting"],
    multivariate: bool = DEFAULTS["multivariate"],
    max_components: int = DEFAULTS["max_components"],
    verbose: bool = False,
) -> list[dict]:
    """Hyperopt's `tpe.suggest` signature; tune it with `functools.partial(tpe.suggest, ...)`.

    `gamma` is Hyperopt's (below = ceil(gamma * sqrt(n_ok)), at most `linear_forgetting`), or a
    callable n_ok -> number of trials in "below". `max_components` bounds the kernels of each
    univariate g(x) (neighbouring kernels are merged beyond it), which keeps a suggestion's cost
    flat as the history grows.
    """
    _check(prior_weight, n_startup_jobs, n_EI_candidates, gamma)
    space = as_space(domain)
    obs = as_observations(trials, space)
    rng = np.random.default_rng(seed)
    groups = _groups(space, multivariate)
    smoothing = prior_weight if multivariate else 0.0
    rows = []
    for _ in new_ids:
        finished = int(np.count_nonzero(obs.state != PENDING))
        if finished < n_startup_jobs:
            row = draw_unique(space, rng, 1, obs.X)[0]
        else:
            n_below = _n_below(gamma, int(np.count_nonzero(obs.state == OK)), linear_forgetting)
            row = _propose(space, obs, rng, groups, n_below, prior_weight, n_EI_candidates,
                           linear_forgetting, smoothing, max_components)
        rows.append(row)
        obs = obs.with_pending(row)
    return [space.to_assignment(r) for r in rows]


def _check(prior_weight: float, n_startup_jobs: int, n_candidates: int, gamma: Any) -> None:
    if not prior_weight > 0:
        raise ValueError(f"tpe.suggest: prior_weight={prior_weight!r} must be > 0")
    if n_startup_jobs < 0 or n_candidates < 1:
        raise ValueError(f"tpe.suggest: n_startup_jobs={n_startup_jobs!r} must be >= 0 "
                         f"and n_EI_candidates={n_candidates!r} >= 1")
    if not callable(gamma) and not 0 < gamma <= 1:
        raise ValueError(f"tpe.suggest: gamma={gamma!r} must be in (0, 1] or a callable")


def _n_below(gamma: Any, n_ok: int, cap: int) -> int:
    if n_ok == 0:
        return 0
    n = gamma(n_ok) if callable(gamma) else min(int(math.ceil(gamma * math.sqrt(n_ok))), cap)
    return max(1, min(int(n), n_ok))


def _groups(space: SearchSpace, multivariate: bool) -> list[list[int]]:
    if not multivariate:
        return [[j] for j in range(len(space))]
    by_condition: dict[tuple, list[int]] = {}
    for j, spec in enumerate(space.params):
        by_condition.setdefault(spec.conditions, []).append(j)
    return list(by_condition.values())


def forgetting_weights(n: int, flat: int) -> np.ndarray:
    """Older trials weigh less: the newest `flat` weigh 1, the rest ramp up from 1/n (Hyperopt's rule)."""
    if n <= flat:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, n - flat), np.ones(flat)])


def _propose(
    space: SearchSpace,
    obs: Observations,
    rng: np.random.Generator,
    groups: list[list[int]],
    n_below: int,
    prior_weight: float,
    n_candidates: int,
    flat: int,
    smoothing: float,
    max_components: int,
) -> np.ndarray:
    ok = np.flatnonzero(obs.state == OK)
    best = ok[np.argpartition(obs.loss[ok], n_below - 1)[:n_below]] if n_below else ok[:0]
    below = np.zeros(len(obs), dtype=bool)
    below[best] = True
    dists = [p.dist for p in space.params]
    candidates, scores = [], []
    for cols in groups:
        active = ~np.isnan(obs.X[:, cols[0]])
        rows_b, rows_a = np.flatnonzero(below & active), np.flatnonzero(~below & active)
        group_dists = [dists[j] for j in cols]
        l_mix = Mixture.fit(group_dists, obs.X[np.ix_(rows_b, cols)], np.ones(len(rows_b)), prior_weight, smoothing)
        g_mix = Mixture.fit(group_dists, obs.X[np.ix_(rows_a, cols)], forgetting_weights(len(rows_a), flat),
                            prior_weight, smoothing, max_components)
        cand = l_mix.sample(rng, n_candidates)
        candidates.append(cand)
        scores.append(l_mix.log_pdf(cand) - g_mix.log_pdf(cand))
    row = _assemble(space, groups, candidates, [np.argmax(s) for s in scores])
    seen = discrete_keys(space, obs.X)
    if seen is None or row_key(row) not in seen:
        return row
    # An exact repeat teaches nothing in a discrete space: take the next most promising combination.
    for _ in range(64):
        picks = [rng.choice(len(s), p=_softmax(s)) for s in scores]
        row = _assemble(space, groups, candidates, picks)
        if row_key(row) not in seen:
            return row
    return draw_unique(space, rng, 1, obs.X)[0]


def _assemble(space: SearchSpace, groups: list[list[int]], candidates: list[np.ndarray], picks: list[int]) -> np.ndarray:
    row = np.empty((1, len(space)))
    for cols, cand, i in zip(groups, candidates, picks):
        row[0, cols] = cand[i]
    return space.mask_inactive(row)[0]


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max())
    return e / e.sum()
