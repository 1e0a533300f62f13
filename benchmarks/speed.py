"""Speed benchmark: milliseconds per TPE suggestion against history size, hyperdist vs Hyperopt vs Optuna.

    python benchmarks/speed.py --sizes 100 1000 10000 --repeats 7

The 10-parameter mixed space: uniform, loguniform, quniform, normal, qloguniform, randint, uniform,
and a choice whose second branch holds a lognormal and a quniform (first branch: a uniform). Each
tool gets n finished trials with random losses, then one suggestion is timed (median of repeats).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import numpy as np


def space(hp):
    return {"a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
            "d": hp.normal("d", 0, 2), "e": hp.qloguniform("e", 0, 6, 1), "f": hp.randint("f", 10),
            "g": hp.uniform("g", 0, 1),
            "m": hp.choice("m", [{"k": "lin", "h": hp.uniform("h", 0, 1)},
                                 {"k": "rbf", "i": hp.lognormal("i", 0, 1), "j": hp.quniform("j", 1, 9, 1)}])}


def _median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for r in range(repeats):
        t = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times), 1000 * min(times), 1000 * max(times)


def hyperdist_ms(n, repeats, multivariate=True):
    from hyperdist import hp, tpe
    from hyperdist.history import OK, Observations
    from hyperdist.space import compile_space

    s = compile_space(space(hp))
    rng = np.random.default_rng(0)
    obs = Observations(s.sample(rng, n), rng.random(n), np.full(n, OK, dtype=np.int8))
    return _median_ms(lambda r=0: tpe.suggest([n], s, obs, r, multivariate=multivariate), repeats)


def hyperopt_ms(n, repeats):
    import hyperopt
    from hyperopt import base

    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    domain = base.Domain(lambda c: 0.0, space(hyperopt.hp))
    trials = hyperopt.Trials()
    docs = hyperopt.rand.suggest(list(range(n)), domain, trials, 0)
    rng = np.random.default_rng(0)
    for doc in docs:
        doc["state"] = base.JOB_STATE_DONE
        doc["result"] = {"loss": float(rng.random()), "status": "ok"}
    trials.insert_trial_docs(docs)
    trials.refresh()
    return _median_ms(lambda r=0: hyperopt.tpe.suggest([n + 1], domain, trials, r), repeats)


def optuna_ms(n, repeats):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    dists = {"a": FloatDistribution(-5, 5), "b": FloatDistribution(np.exp(-8), 1, log=True),
             "c": FloatDistribution(0, 100, step=5), "d": FloatDistribution(-6, 6),
             "e": FloatDistribution(1, 403, step=1), "f": IntDistribution(0, 9), "g": FloatDistribution(0, 1),
             "m": CategoricalDistribution([0, 1]), "h": FloatDistribution(0, 1),
             "i": FloatDistribution(np.exp(-3), np.exp(3), log=True), "j": FloatDistribution(1, 9, step=1)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(n):
        params = {}
        for k, d in dists.items():
            if k in ("h", "i", "j") and (params["m"] == 0) != (k == "h"):
                continue
            if isinstance(d, CategoricalDistribution):
                params[k] = int(rng.integers(2))
            elif isinstance(d, IntDistribution):
                params[k] = int(rng.integers(d.low, d.high + 1))
            elif d.step:
                params[k] = float(d.low + d.step * rng.integers(0, int((d.high - d.low) / d.step) + 1))
            elif d.log:
                params[k] = float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
            else:
                params[k] = float(rng.uniform(d.low, d.high))
        study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                  value=float(rng.random())))

    def ask(r=0):
        trial = study.ask()
        for k in ("a", "b", "c", "d", "e", "f", "g"):
            d = dists[k]
            if isinstance(d, IntDistribution):
                trial.suggest_int(k, d.low, d.high)
            else:
                trial.suggest_float(k, d.low, d.high, step=d.step, log=d.log)
        m = trial.suggest_categorical("m", [0, 1])
        for k in (("h",) if m == 0 else ("i", "j")):
            d = dists[k]
            trial.suggest_float(k, d.low, d.high, step=d.step, log=d.log)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # keep the history at n finished trials
    return _median_ms(ask, repeats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip", nargs="*", default=[])
    args = ap.parse_args()
    tools = {"hyperdist": hyperdist_ms,
             "hyperdist univariate": lambda n, r: hyperdist_ms(n, r, multivariate=False),
             "Hyperopt": hyperopt_ms, "Optuna": optuna_ms}
    print("ms per suggestion: median [min, max] over repeats; ratio = tool / hyperdist (same run)\n")
    print("| n | " + " | ".join(t for t in tools if t not in args.skip) + " | Hyperopt / hyperdist | Optuna / hyperdist |")
    print("|---" * (len(tools) + 3 - len(args.skip)) + "|")
    for n in args.sizes:
        res = {t: fn(n, args.repeats if n < 10000 or t.startswith("hyperdist") else 3)
               for t, fn in tools.items() if t not in args.skip}
        cells = [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in res.values()]
        ratios = [f"{res[t][0] / res['hyperdist'][0]:.1f}x" if t in res else "-" for t in ("Hyperopt", "Optuna")]
        print(f"| {n} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
