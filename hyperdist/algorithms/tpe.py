"""Tree-structured Parzen Estimator (Bergstra et al. 2011; components as in Watanabe 2023).

Finished trials are split by loss into the best few ("below") and the rest ("above"). Trials still
being evaluated, and failed ones, join "above" with the worst possible loss (a constant liar), so
parallel workers are steered away from points already taken. For each group of parameters a
Parzen mixture l(x) is fitted to "below" and g(x) to "above"; candidates drawn from l are ranked
by log l(x) - log g(x) and the best one is proposed.

Groups: in the multivariate mode (the default) parameters that are active under the same
branches form one group with joint kernels, which captures interactions; in the univariate mode
(Hyperopt's, `multivariate=False`) every parameter is its own group and all of them are scored in
one batch. Conditional parameters only ever see the trials in which they were active.

Defaults, chosen on benchmarks/README.md (11 domains, 30 seeds, checked again on 30 fresh seeds):
multivariate, and gamma = 1.0 instead of Hyperopt's 0.25, so "below" holds ceil(sqrt(n)) trials
(10 at 100 finished trials, not 3): the smaller split made the search too greedy. With both, the
median best loss after 100 evaluations is at least as good as Hyperopt's TPE on 9 of 11 domains
(11 of 11 on the held-out seeds, and over 100 more) and as Optuna's TPE on 7 of 11 (8 of 11; 7 of
11 over the 100), clearly worse on none. `partial(tpe.suggest, multivariate=False, gamma=0.25,
improvement_floor=None)` is Hyperopt's configuration.

On conditional spaces (benchmarks/real/, issue 17) three more defaults keep the search exploring:
a proposal that repeats an evaluated configuration on its active parameters is replaced
(`near_duplicates`); g(x)'s categorical kernels are sharp (`above_smoothing=0`), so a branch tried
a few times and lost still looks promising where l(x) (smoothed towards the prior) does; and
l(x)'s kernels weigh each "below" trial's margin under the threshold (`improvement_floor`), so a
plateau of barely-good trials does not outweigh the one clearly better trial.

Beyond `max_components` trials, g(x) keeps a bounded number of kernels per group (binned, or
subsampled in the multivariate mode), so a suggestion's cost stops growing with the history.
The mixtures are in parzen.py (fitting, drawing), scoring.py and plan.py (a space's constants).
"""
from __future__ import annotations

import math
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from hyperdist.algorithms import parzen, scoring
from hyperdist.algorithms.common import as_observations, as_space, discrete_keys, generator, is_seen, near_repeats
from hyperdist.algorithms.history import FAILED, OK, Observations
from hyperdist.algorithms.plan import Plan, plan as make_plan
from hyperdist.algorithms.rand import draw_unique
from hyperdist.space.compiled import SearchSpace


def suggest(
    new_ids: Sequence[int],
    domain: Any,
    trials: Any,
    seed: Any,
    prior_weight: float = 1.0,
    n_startup_jobs: int = 20,
    n_EI_candidates: int = 24,
    gamma: float | Callable[[int], int] = 1.0,
    linear_forgetting: int = 25,
    multivariate: bool = True,
    max_components: int = 128,
    near_duplicates: float | None = 0.0,
    above_smoothing: float | None = 0.0,
    improvement_floor: float | None = 0.1,
    verbose: bool = True,
) -> list[dict]:
    """Hyperopt's `tpe.suggest` signature; tune it with `functools.partial(tpe.suggest, ...)`.

    `gamma` is Hyperopt's (below = ceil(gamma * sqrt(n_ok)), at most `linear_forgetting`), or a
    callable n_ok -> number of trials in "below". `max_components` bounds the kernels of each
    group's mixture (beyond it, univariate ones are binned, multivariate ones subsampled), which
    keeps a suggestion's cost nearly flat as the history grows.

    `near_duplicates`: a proposal is replaced by the next most promising one when it repeats an
    evaluated configuration: the same parameters active, discrete values equal and continuous ones in
    the same cell of a grid `near_duplicates` x their prior sigma wide (0: only rows whose active
    parameters are all discrete can repeat; None: only wholly discrete spaces are checked, as before
    issue 17). `above_smoothing`: the share s / (1 + s) of each of g(x)'s categorical kernels that goes
    to the prior (None: as l(x)'s, i.e. prior_weight in the multivariate mode, 0 in the univariate one).
    `improvement_floor`: l(x)'s kernel of a "below" trial weighs (threshold - loss) / (threshold - best
    loss), the threshold being the best loss left "above", but at least this (None: equal weights).
    `verbose` is accepted because Hyperopt's `tpe.suggest` has it (0.3.0: verbose=True) and ignored:
    a suggestion logs nothing.
    """
    _check(prior_weight, n_startup_jobs, n_EI_candidates, gamma)
    for name, value in (("near_duplicates", near_duplicates), ("above_smoothing", above_smoothing)):
        if value is not None and not value >= 0:
            raise ValueError(f"tpe.suggest: {name}={value!r} must be >= 0 (or None)")
    if improvement_floor is not None and not 0 < improvement_floor <= 1:
        raise ValueError(f"tpe.suggest: improvement_floor={improvement_floor!r} must be in (0, 1] (or None)")
    space = as_space(domain)
    obs = as_observations(trials, space)
    rng = generator(seed)
    plan = _plan(space, bool(multivariate))
    rows: list[np.ndarray] = []
    for i in range(len(new_ids)):
        if i:
            obs = obs.with_pending(rows[-1])
        ok = (obs.state == OK).nonzero()[0]
        if len(ok) + np.count_nonzero(obs.state == FAILED) < n_startup_jobs:
            rows.append(draw_unique(space, rng, 1, obs.X)[0])
            continue
        n_below = _n_below(gamma, len(ok), linear_forgetting)
        rows.append(_propose(space, obs, ok, rng, plan, n_below, prior_weight, n_EI_candidates, linear_forgetting,
                             multivariate, max_components, near_duplicates, above_smoothing, improvement_floor))
    return [space.to_assignment(r.tolist()) for r in rows]  # Python floats: faster to convert


_PLANS: "weakref.WeakKeyDictionary[SearchSpace, dict[bool, Plan]]" = weakref.WeakKeyDictionary()


def _plan(space: SearchSpace, multivariate: bool) -> Plan:
    """plan.plan, remembered per space object: hashing the parameters for plan.plan's cache costs
    more than a dictionary lookup by identity."""
    plans = _PLANS.get(space)
    if plans is None:
        plans = _PLANS[space] = {}
    if multivariate not in plans:
        plans[multivariate] = make_plan(space.params, multivariate)
    return plans[multivariate]


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


def _improvement(loss: np.ndarray, best: np.ndarray, rows: np.ndarray, ok_loss: np.ndarray,
                 floor: float) -> np.ndarray | None:
    """l(x)'s kernel weights for the "below" trials `rows` (a subset of `best`): each weighs its
    improvement on the threshold (the best loss left "above"), 1 for the best trial, at least `floor`;
    None when there is no margin. With equal weights a plateau of many trials a hair better than the
    threshold (a family that is good almost everywhere) outweighs the one trial that is clearly better
    (issue 17, diabetes_models in benchmarks/real/); expected improvement weighs the margin too."""
    below = loss[best]
    worst, top = below.max(), below.min()
    above = ok_loss[ok_loss > worst]
    span = (above.min() if len(above) else worst) - top
    if not span > 0:
        return None
    return np.maximum((span - (loss[rows] - top)) / span, floor)


def _forgetting(active: np.ndarray, flat: int) -> tuple[np.ndarray, np.ndarray]:
    """Hyperopt's linear forgetting along each row of `active` (G x n, trial order), over its True
    entries only: the newest `flat` weigh 1, older ones ramp up from 1/count; False entries weigh 0.
    Also returns each row's count of True entries."""
    if active.shape[1] == 0:
        return np.zeros(active.shape), np.zeros(len(active), dtype=np.int32)
    rank = active.cumsum(axis=1, dtype=np.int32)  # int32: several times faster than int64 here
    counts = rank[:, -1]
    # per-row constants in Python floats (the same IEEE arithmetic as numpy's, fewer calls)
    clipped = [max(c, 1) for c in counts.tolist()]
    slope, base = np.array([((1 - 1.0 / c) / max(c - flat - 1, 1), 1.0 / c) for c in clipped]).T[:, :, None]
    start = np.array(clipped, dtype=np.int32)[:, None] - flat  # int32 like rank: no casting in the comparison
    w = rank - 1.0                                      # in place from here: see parzen.score on why
    w *= slope
    w += base
    np.copyto(w, 1.0, where=rank > start)
    w *= active
    return w, counts


def _subsample(w: np.ndarray, counts: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most k kernels per group (w: G x n weights, counts: weighted rows per group), for the
    multivariate g(x) of long histories.

    A group with more than k weighted rows keeps a systematic sample: k equally spaced points on
    its cumulative weight, each worth total / k, so row i is kept about w_i k / total times (copies
    merged into one kernel): an unbiased, low-variance estimate of the mixture at O(n) cost. A group
    with fewer rows keeps all of them, exactly weighted.
    """
    G, n = w.shape
    cum = w.cumsum(axis=1)
    total = cum[:, -1:].copy()
    step = total / k
    span = np.arange(G)[:, None]
    shift = span * (2.0 * np.maximum.reduce(total, axis=None) + 1.0)  # one sorted array for all groups
    points = (np.arange(k) + rng.random((G, 1))) * step
    points += shift
    cum += shift
    rows = cum.ravel().searchsorted(points.ravel(), side="right").reshape(G, k)
    span *= n
    rows -= span
    np.minimum(rows, n - 1, out=rows)
    first = np.empty((G, k), dtype=bool)
    first[:, 0] = True
    np.not_equal(rows[:, 1:], rows[:, :-1], out=first[:, 1:])  # rows are sorted, copies adjacent
    run = first.cumsum() - 1
    copies = np.bincount(run)[run].reshape(G, k)
    kept = np.where(first, copies * step, 0.0)
    if np.minimum.reduce(counts) <= k:
        few = counts <= k
        order = np.argsort(w[few] <= 0, axis=1, kind="stable")[:, :k]  # weighted rows first, in order
        rows[few], kept[few] = order, np.take_along_axis(w[few], order, axis=1)
    return rows, kept


def _kernels(w: np.ndarray, counts: np.ndarray | None, max_components: int, multivariate: bool,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """The (rows, weights) of the kernels of the mixture of the rows with weights w (G x n, 0 = left out),
    at most `max_components` per group (beyond, subsampled in the multivariate mode), or None when they
    are to be binned (univariate mode); `counts` (weighted rows per group) is needed only where
    subsampling is possible."""
    if counts is None or np.maximum.reduce(counts) <= max_components:  # else more rows than that, surely
        used = np.logical_or.reduce(w, axis=0).nonzero()[0]
        if len(used) <= max_components:
            return used[None, :], w[:, used]
    if not multivariate:
        return None
    return _subsample(w, (w > 0).sum(axis=1) if counts is None else counts, max_components, rng)


def _propose(space: SearchSpace, obs: Observations, ok: np.ndarray, rng: np.random.Generator, plan: Plan,
             n_below: int, prior_weight: float, n_candidates: int, flat: int, multivariate: bool,
             max_components: int, near: float | None, above_smoothing: float | None,
             floor: float | None) -> np.ndarray:
    if not n_below:
        best = ok[:0]
    elif len(ok) == len(obs):  # all finished ok: no gathers needed
        best = obs.loss.argpartition(n_below - 1)[:n_below]
    else:
        best = ok[obs.loss[ok].argpartition(n_below - 1)[:n_below]]
    active = ~np.isnan(obs.X.T[plan.lead])                              # G x n
    l_w = np.zeros(active.shape, dtype=bool)
    l_w[:, best] = active[:, best]
    active[:, best] = False                                             # the rest: "above"
    g_w, counts = _forgetting(active, flat)
    smoothing = prior_weight if multivariate else 0.0
    smoothing_g = smoothing if above_smoothing is None else above_smoothing
    l_kernels = _kernels(l_w, None, max_components, multivariate, rng)
    if floor is not None and floor < 1 and len(best) and l_kernels is not None and len(l_kernels[0]) == 1:
        factor = _improvement(obs.loss, best, l_kernels[0][0], obs.loss[ok], floor)
        if factor is not None:
            l_kernels = l_kernels[0], l_kernels[1] * factor
    g_kernels = _kernels(g_w, counts, max_components, multivariate, rng)
    if l_kernels is not None and g_kernels is not None:
        both, M_l = parzen.fit_pair(plan, obs.X, l_kernels, g_kernels, prior_weight)
    else:  # binned (univariate mode, long histories)
        both, M_l = parzen.join(*(parzen.fit(plan, obs.X, *k, prior_weight) if k is not None
                                  else parzen.fit_binned(plan, obs.X, w, prior_weight, max_components)
                                  for k, w in ((l_kernels, l_w), (g_kernels, g_w))))
    values, t_cont = parzen.sample(plan, parzen.split(both, M_l), rng, n_candidates, smoothing)
    scores = scoring.score(plan, both, M_l, values, t_cont, smoothing, smoothing_g)
    row = np.array(_picked_row(space, plan, values, scores.argmax(axis=1)))
    repeats = _repeat_test(space, obs.X, near)
    if repeats is None or not repeats(row[None, :])[0]:
        return row
    # A repeat teaches a deterministic objective nothing: try the next most promising combinations.
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    picks = np.minimum((rng.random((len(cum), 64, 1)) >= cum[:, None, :]).sum(axis=2), n_candidates - 1)
    rows = _assemble(space, plan, values, picks)
    fresh = np.flatnonzero(~repeats(rows))
    if len(fresh):
        return rows[fresh[0]]
    # Else a fresh prior draw, if there is one; in a space (nearly) exhausted, and for a noisy objective
    # there a repeat does teach something, TPE's own pick beats a random repeat (n_arms in benchmarks/).
    other = draw_unique(space, rng, 1, obs.X)[0]
    return row if repeats(other[None, :])[0] else other


def _repeat_test(space: SearchSpace, X: np.ndarray, near: float | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Which rows (k x d) repeat an evaluated one: near-repeats (`near_repeats`) of the configuration
    actually evaluated, or (near=None, before issue 17) exact repeats in wholly discrete spaces only."""
    if near is None:
        seen = discrete_keys(space, X)
        return None if seen is None else (lambda rows: is_seen(seen, rows))
    return lambda rows: near_repeats(space, X, rows, near)


def _assemble(space: SearchSpace, plan: Plan, values: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Rows (one per column of picks, G x k) taking each group's picked candidate."""
    rows = np.empty((picks.shape[1], len(space)))
    rows[:, plan.cols] = np.take_along_axis(values, picks[plan.group], axis=1).T
    return space.mask_inactive(rows)


def _picked_row(space: SearchSpace, plan: Plan, values: np.ndarray, picks: np.ndarray) -> list[float]:
    """The row taking each group's picked candidate (picks: G), inactive parameters NaN; in plain
    Python, a dozen numpy calls fewer than `_assemble` and `space.mask_inactive`."""
    row = [math.nan] * len(space)
    for j, x in zip(plan.cols.tolist(), values[np.arange(len(plan.cols)), picks[plan.group]].tolist()):
        row[j] = x
    return space.mask_inactive_row(row)
