"""Speed benchmark: milliseconds per TPE suggestion, and per trial of the full fmin path, against history
size, hyperdist vs Hyperopt vs Optuna.

    python benchmarks/speed.py --sizes 100 1000 10000 --repeats 9 --out benchmarks/results/speed.md

The space has 10 parameters of mixed families: uniform, loguniform, quniform, normal,
qloguniform, randint, and a choice whose first branch holds a uniform and whose second branch a
lognormal and a quniform. Each tool is given a history of n finished trials (prior draws with
random losses), then one suggestion is timed; nothing but the suggestion is inside the timer.

* `hd TPE`: `hyperdist.tpe.suggest([tid], compiled_space, observations, seed)` on a
  `hyperdist.algorithms.history.Observations` of the n trials, defaults (multivariate);
* `hd TPE uni`: the same with multivariate=False;
* `hd Trials`: the path `fmin` takes, `tpe.suggest(ids, compiled_space, trials, seed)` on a
  `hyperdist.Trials` holding the n trials (its numeric table is updated incrementally), plus
  recording the new trial as finished (insert, start, finish), as one `fmin` step minus the objective;
* `Hyperopt TPE`: one `hyperopt.tpe.suggest` call on a `hyperopt.Trials` holding n finished trials
  (made with `rand.suggest` and `insert_trial_docs`);
* `Optuna TPE` / `Optuna TPE mv`: `study.ask()` plus the trial's `suggest_*` calls (Optuna samples
  univariate parameters inside `suggest_*`, so `ask()` alone would time nothing) on a study holding n
  completed trials added with `add_trials`; the trial is told FAIL outside the timer so that the
  history stays at n completed trials.

The full fmin path, each tool continuing a search that holds n finished trials by K = 10 trials with a
cheap objective (a function of a, b, d); each repeat times one call adding no trial (the fixed cost
of a call: space compilation, set-up) and one adding K, and reports (second - first) / K, so only what
each trial costs remains (suggestion, evaluation, recording, stop-rule and progress bookkeeping):

* `hd fmin`: `hyperdist.fmin(fn, space, tpe.suggest, max_evals=len(trials) + K, trials=trials)` on a
  `hyperdist.Trials` holding the n trials;
* `Hyperopt fmin`: `hyperopt.fmin(...)` the same way on a `hyperopt.Trials` holding n trials;
* `Optuna optimize`: `study.optimize(objective, n_trials=K)` on the study of `Optuna TPE` (n trials),
  the objective asking the same `suggest_*` calls.

The fmin-path peers' ratios are to `hd fmin`. The history grows by K trials per repeat.

Repeats are interleaved (repeat r of every tool runs before repeat r + 1 of any) so that load from
other work on a shared machine hits all tools alike. Times are CPU time of this process
(`time.process_time`, `--clock cpu`, the default: every tool is single-threaded here, and CPU time is
far less disturbed than wall time by other work on a shared machine) or wall time (`--clock wall`).
Reported: median [min, max] over repeats, and the ratio of each peer's median to hyperdist's
(`hd TPE`) in the same run.

Each timed call thus follows the other tools' calls, which evict its code and data from the CPU
caches (as an objective run between two suggestions of `fmin` does): for hyperdist's ~1 ms
suggestions that costs ~0.3 ms. `--warm` precedes each timed call by an untimed call of the same
tool, which measures the suggestion itself with warm caches.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envinfo import describe  # noqa: E402


def space(hp):
    return {"a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
            "d": hp.normal("d", 0, 2), "e": hp.qloguniform("e", 0, 6, 1), "f": hp.randint("f", 10),
            "m": hp.choice("m", [{"k": "lin", "h": hp.uniform("h", 0, 1)},
                                 {"k": "rbf", "i": hp.lognormal("i", 0, 1), "j": hp.quniform("j", 1, 9, 1)}])}


# --- setups: each returns a function(seed) that makes one suggestion ---------------------------------

def setup_hyperdist(n: int, **kwargs) -> Callable[[int], object]:
    from hyperdist import hp, tpe
    from hyperdist.algorithms.history import OK, Observations
    from hyperdist.space.compiled import compile_space

    s = compile_space(space(hp))
    rng = np.random.default_rng(0)
    obs = Observations(s.sample(rng, n), rng.random(n), np.full(n, OK, dtype=np.int8))
    return lambda seed: tpe.suggest([n], s, obs, seed, **kwargs)


def _finished_trials(n: int) -> tuple[object, object]:
    """(compiled space, a hyperdist Trials holding n finished trials), as a long search leaves them."""
    from hyperdist import Trials, hp
    from hyperdist.space.compiled import compile_space

    s = compile_space(space(hp))
    rng = np.random.default_rng(0)
    trials = Trials()
    for tid, row in enumerate(s.sample(rng, n)):
        trials.insert(tid, s.to_assignment(row), s.labels)
        trials.start(tid)
        trials.finish(tid, {"status": "ok", "loss": float(rng.random())})
    return s, trials


def setup_hyperdist_trials(n: int) -> Callable[[int], object]:
    from hyperdist import tpe

    s, trials = _finished_trials(n)
    trials.observations(s)  # the table exists once fmin has run; time the steady state
    rng = np.random.default_rng(1)

    def step(seed: int):
        ids = trials.new_trial_ids(1)
        params = tpe.suggest(ids, s, trials, seed)[0]
        trials.insert(ids[0], params, s.labels)
        trials.start(ids[0])
        trials.finish(ids[0], {"status": "ok", "loss": float(rng.random())})
        return params
    return step


def _hyperopt_history(n: int) -> tuple[Any, Any, Any]:
    """Hyperopt's space, domain and a Trials of n finished random trials: the history both of its
    setups (suggestion alone, and the fmin path) start from."""
    import hyperopt
    from hyperopt import base

    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    hspace = space(hyperopt.hp)
    domain = base.Domain(lambda c: 0.0, hspace)
    trials = hyperopt.Trials()
    docs = hyperopt.rand.suggest(list(range(n)), domain, trials, 0)
    rng = np.random.default_rng(0)
    for doc in docs:
        doc["state"] = base.JOB_STATE_DONE
        doc["result"] = {"loss": float(rng.random()), "status": base.STATUS_OK}
    trials.insert_trial_docs(docs)
    trials.refresh()
    return hspace, domain, trials


def setup_hyperopt(n: int) -> Callable[[int], object]:
    import hyperopt

    _, domain, trials = _hyperopt_history(n)
    return lambda seed: hyperopt.tpe.suggest([n], domain, trials, seed)


def _optuna_dists():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {"a": FloatDistribution(-5, 5), "b": FloatDistribution(np.exp(-8), 1, log=True),
            "c": FloatDistribution(0, 100, step=5), "d": FloatDistribution(-6, 6),  # normal(0, 2): +- 3 sigma
            "e": IntDistribution(1, 403, log=True), "f": IntDistribution(0, 9),
            "m": CategoricalDistribution([0, 1]), "h": FloatDistribution(0, 1),
            "i": FloatDistribution(np.exp(-3), np.exp(3), log=True), "j": FloatDistribution(1, 9, step=1)}


def _optuna_suggest(trial, dists) -> dict:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out = {}
    for k in ("a", "b", "c", "d", "e", "f", "m"):
        d = dists[k]
        if isinstance(d, CategoricalDistribution):
            out[k] = trial.suggest_categorical(k, d.choices)
        elif isinstance(d, IntDistribution):
            out[k] = trial.suggest_int(k, d.low, d.high, log=d.log)
        else:
            out[k] = trial.suggest_float(k, d.low, d.high, step=d.step, log=d.log)
    for k in (("h",) if out["m"] == 0 else ("i", "j")):
        d = dists[k]
        out[k] = trial.suggest_float(k, d.low, d.high, step=d.step, log=d.log)
    return out


def setup_optuna(n: int, multivariate: bool = False) -> Callable[[int], object]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    dists = _optuna_dists()
    # the history: prior draws of a random sampler, with random losses
    sampler = optuna.samplers.RandomSampler(seed=0)
    draw = optuna.create_study(sampler=sampler)
    rng = np.random.default_rng(0)
    made = []
    for _ in range(n):
        t = draw.ask()
        params = _optuna_suggest(t, dists)
        draw.tell(t, state=optuna.trial.TrialState.FAIL)
        made.append(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                              value=float(rng.random())))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, multivariate=multivariate))
    study.add_trials(made)
    pending = []

    def ask(seed: int):
        trial = study.ask()
        out = _optuna_suggest(trial, dists)
        pending.append(trial)
        return out

    def cleanup():  # outside the timer
        while pending:
            study.tell(pending.pop(), state=optuna.trial.TrialState.FAIL)
    ask.cleanup = cleanup
    ask.study = study
    return ask


# --- the full fmin path: a search holding n finished trials is continued by K trials ----------------
# Each call below returns its own measurement: (time of K more trials - time of a call that adds
# none, i.e. the fixed per-call cost) / K, in ms, so only what each trial costs remains. The history
# grows by K trials per repeat (5 repeats: n + 50 at most).
K = 10


def _loss(cfg: dict) -> float:
    return (cfg["a"] - 1) ** 2 + cfg["b"] + cfg["d"] ** 2 / 10


CLOCK = time.process_time  # set from --clock


def _per_trial(run: Callable[[int], None], size: Callable[[], int]) -> float:
    clock, n = CLOCK, size()
    start = clock()
    run(n)  # a call that evaluates nothing: its cost is the fixed per-call cost
    fixed = clock() - start
    start = clock()
    run(n + K)
    per_call = clock() - start
    assert size() == n + K, (size(), n + K)
    return 1000 * (per_call - fixed) / K


def setup_hyperdist_fmin(n: int) -> Callable[[int], float]:
    from hyperdist import fmin, tpe

    s, trials = _finished_trials(n)

    def step(seed: int) -> float:
        return _per_trial(lambda m: fmin(_flat_loss, s.tree, algo=tpe.suggest, max_evals=m, trials=trials,
                                         rstate=seed, show_progressbar=False), lambda: len(trials))
    step.measures_itself = True
    return step


def _flat_loss(cfg: dict) -> float:
    return _loss(cfg)


def setup_hyperopt_fmin(n: int) -> Callable[[int], float]:
    import hyperopt

    hspace, _, trials = _hyperopt_history(n)

    def step(seed: int) -> float:
        return _per_trial(lambda m: hyperopt.fmin(_loss, hspace, algo=hyperopt.tpe.suggest, max_evals=m,
                                                  trials=trials, rstate=np.random.default_rng(seed),
                                                  show_progressbar=False), lambda: len(trials))
    step.measures_itself = True
    return step


def setup_optuna_optimize(n: int) -> Callable[[int], float]:
    import optuna

    study = setup_optuna(n).study
    dists = _optuna_dists()

    def objective(trial) -> float:
        return _loss(_optuna_suggest(trial, dists))

    def step(seed: int) -> float:
        return _per_trial(lambda m: study.optimize(objective, n_trials=m - len(study.trials)),
                          lambda: len(study.trials))
    step.measures_itself = True
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return step


TOOLS: dict[str, Callable[[int], Callable[[int], object]]] = {
    "hd TPE": setup_hyperdist,
    "hd TPE uni": lambda n: setup_hyperdist(n, multivariate=False),
    "hd Trials": setup_hyperdist_trials,
    "Hyperopt TPE": setup_hyperopt,
    "Optuna TPE": setup_optuna,
    "Optuna TPE mv": lambda n: setup_optuna(n, multivariate=True),
    "hd fmin": setup_hyperdist_fmin,
    "Hyperopt fmin": setup_hyperopt_fmin,
    "Optuna optimize": setup_optuna_optimize,
}
SUGGEST_TOOLS = [t for t in TOOLS if t not in ("hd fmin", "Hyperopt fmin", "Optuna optimize")]


def time_size(n: int, tools: list[str], repeats: int, clock=time.process_time,
              warm: bool = False) -> dict[str, list[float]]:
    fns = {}
    for t in tools:
        fns[t] = TOOLS[t](n)
        fns[t](10_000)  # warm-up (imports, caches)
        getattr(fns[t], "cleanup", lambda: None)()
    times: dict[str, list[float]] = {t: [] for t in tools}
    for r in range(repeats):
        for t in tools:
            if warm:  # an untimed call just before: the timed one finds the tool's code and data in the caches
                fns[t](r + 100_000)
                getattr(fns[t], "cleanup", lambda: None)()
            start = clock()
            out = fns[t](r)
            times[t].append(out if getattr(fns[t], "measures_itself", False) else 1000 * (clock() - start))
            getattr(fns[t], "cleanup", lambda: None)()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu: time.process_time (default); wall: time.perf_counter")
    ap.add_argument("--warm", action="store_true",
                    help="precede each timed call by an untimed call of the same tool (warm caches)")
    ap.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = ap.parse_args()
    global CLOCK
    base = args.tools[0]
    peers = [t for t in args.tools if not t.startswith("hd")]
    clock = CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    def base_of(peer: str) -> str:  # fmin-path peers are compared with hyperdist's fmin path
        return "hd fmin" if peer not in SUGGEST_TOOLS and "hd fmin" in args.tools else base
    lines = [f"ms per suggestion (fmin-path tools: per trial; {args.clock} time{', warm caches' if args.warm else ''}), "
             f"median [min, max] over "
             f"{args.repeats} interleaved repeats; "
             f"ratio = tool median / hyperdist median (same run)", "",
             "| n | " + " | ".join(args.tools) + " | " + " | ".join(f"{p} / {base_of(p)}" for p in peers) + " |",
             "|---" * (1 + len(args.tools) + len(peers)) + "|"]
    print("\n".join(lines), flush=True)
    load = [os.getloadavg()[0]]
    started = time.perf_counter()
    for n in args.sizes:
        times = time_size(n, args.tools, args.repeats, clock, args.warm)
        med = {t: statistics.median(v) for t, v in times.items()}
        cells = [f"{med[t]:.2f} [{min(times[t]):.2f}, {max(times[t]):.2f}]" for t in args.tools]
        ratios = [f"{med[p] / med[base_of(p)]:.1f}x" for p in peers]
        line = f"| {n} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |"
        lines.append(line)
        print(line, flush=True)
        load.append(os.getloadavg()[0])
    tail = [
        "",
        "Command: " + shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]])
        + (f" (PYTHONPATH={os.environ['PYTHONPATH']})" if os.environ.get("PYTHONPATH") else ""),
        f"1-minute load average at the start and after each size: {', '.join(f'{x:.2f}' for x in load)} "
        f"({os.cpu_count()} cores); total {time.perf_counter() - started:.0f} s.",
        describe(),
    ]
    print("\n".join(tail))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines + tail) + "\n")


if __name__ == "__main__":
    sys.exit(main())
