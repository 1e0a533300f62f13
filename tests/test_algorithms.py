"""TPE and random search as pure functions: determinism, pending trials, batches, repeats, conditions."""
from __future__ import annotations

import functools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperdist import Trials, fmin, hp, rand, tpe
from hyperdist.history import OK, Observations
from hyperdist.space import compile_space

SPACE = compile_space({
    "x": hp.uniform("x", -5, 5),
    "lr": hp.loguniform("lr", -8, 0),
    "n": hp.quniform("n", 1, 50, 1),
    "m": hp.choice("m", [{"k": 0}, {"k": 1, "s": hp.normal("s", 0, 1), "q": hp.randint("q", 5)}]),
})


def _history(n: int, seed: int = 0) -> Observations:
    rng = np.random.default_rng(seed)
    X = SPACE.sample(rng, n)
    loss = (X[:, 0] - 1) ** 2 + rng.random(n) * 0.1
    return Observations(X, loss, np.full(n, OK, dtype=np.int8))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), multivariate=st.booleans())
def test_same_seed_same_suggestions(seed, multivariate):
    obs = _history(60)
    a = tpe.suggest([0, 1, 2], SPACE, obs, seed, multivariate=multivariate)
    b = tpe.suggest([0, 1, 2], SPACE, obs, seed, multivariate=multivariate)
    assert a == b
    for params in a:
        SPACE.validate(params)  # in support, conditional params present exactly when active


def test_batch_members_differ_and_pending_trials_push_suggestions_away():
    obs = _history(80)
    batch = tpe.suggest(list(range(8)), SPACE, obs, 11)
    assert len({tuple(sorted(p.items())) for p in batch}) == 8
    # 1-D: with many pending trials piled on the favourite spot, TPE moves elsewhere
    space = compile_space(hp.uniform("x", 0, 10))
    X = np.linspace(0, 10, 200)[:, None]
    finished = Observations(X, (X[:, 0] - 3) ** 2, np.full(200, OK, dtype=np.int8))
    free = np.array([tpe.suggest([0], space, finished, s)[0]["x"] for s in range(40)])
    pending = finished.with_pending(np.full((100, 1), 3.0))
    crowded = np.array([tpe.suggest([0], space, pending, s)[0]["x"] for s in range(40)])
    assert np.mean(np.abs(free - 3) < 0.1) > 0.25
    assert np.mean(np.abs(crowded - 3) < 0.1) < 0.05


def test_no_exact_repeats_in_a_discrete_space():
    space = compile_space({"a": hp.choice("a", [1, 2, 3]), "b": hp.randint("b", 4)})
    trials = Trials()
    fmin(lambda c: c["a"] * c["b"], space, algo=functools.partial(tpe.suggest, n_startup_jobs=3), max_evals=12,
         trials=trials, rstate=0, show_progressbar=False)
    seen = {(p["a"], p["b"]) for p in (t["params"] for t in trials.trials)}
    assert len(seen) == 12
    rows = rand.suggest(list(range(12)), space, None, 1)
    assert len({(r["a"], r["b"]) for r in rows}) == 12


def _median_best(algo, seeds=range(7), evals=60) -> float:
    bests = []
    for seed in seeds:
        trials = Trials()
        fmin(lambda c: (c["x"] - 1.3) ** 2 + (c["y"] + 0.7) ** 2, {"x": hp.uniform("x", -5, 5),
             "y": hp.uniform("y", -5, 5)}, algo=algo, max_evals=evals, trials=trials, rstate=seed,
             show_progressbar=False)
        bests.append(trials.best_trial["result"]["loss"])
    return float(np.median(bests))


def test_tpe_beats_random_on_a_quadratic():
    assert _median_best(tpe.suggest) < _median_best(rand.suggest) / 2
    assert _median_best(functools.partial(tpe.suggest, multivariate=True)) < _median_best(rand.suggest) / 2


def test_long_history_uses_pooled_kernels_and_still_converges():
    space = compile_space(hp.uniform("x", -10, 10))
    rng = np.random.default_rng(0)
    X = rng.uniform(-10, 10, (5000, 1))
    obs = Observations(X, (X[:, 0] - 2) ** 2, np.full(5000, OK, dtype=np.int8))
    picks = [tpe.suggest([0], space, obs, s)[0]["x"] for s in range(10)]
    assert abs(np.median(picks) - 2) < 0.5
