"""Quality benchmark: best loss after 25/50/100 evaluations, hyperdist vs Hyperopt vs Optuna, one run.

    python benchmarks/quality.py --seeds 10 --evals 100 --processes 2 --out benchmarks/results/quality.md

Median and interquartile range over seeds of the best loss seen so far, per domain and method.
"""
from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from domains import DOMAINS  # noqa: E402

CHECKPOINTS = (25, 50, 100)


def _hyperdist(domain, seed, evals, variant):
    import hyperdist

    algo = {"tpe": hyperdist.tpe.suggest, "rand": hyperdist.rand.suggest,
            "tpe_uni": functools.partial(hyperdist.tpe.suggest, multivariate=False),
            "tpe_s10": functools.partial(hyperdist.tpe.suggest, n_startup_jobs=10)}[variant]
    rng = np.random.default_rng(seed + 10_000)
    trials = hyperdist.Trials()
    hyperdist.fmin(lambda c: domain.loss(c, rng), domain.space(hyperdist.hp), algo=algo, max_evals=evals,
                   trials=trials, rstate=np.random.default_rng(seed), show_progressbar=False)
    return trials.losses()


def _hyperopt(domain, seed, evals, variant):
    import hyperopt

    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    rng = np.random.default_rng(seed + 10_000)
    trials = hyperopt.Trials()
    hyperopt.fmin(lambda c: domain.loss(c, rng), domain.space(hyperopt.hp), algo=hyperopt.tpe.suggest,
                  max_evals=evals, trials=trials, rstate=np.random.default_rng(seed), show_progressbar=False)
    return trials.losses()


def _optuna(domain, seed, evals, variant):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(seed + 10_000)
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=variant == "tpe_mv") if variant.startswith("tpe") \
        else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: domain.loss(domain.optuna(t), rng), n_trials=evals)
    return [t.value for t in study.trials]


METHODS = {
    "hyperdist TPE": (_hyperdist, "tpe"),
    "hyperdist TPE univariate": (_hyperdist, "tpe_uni"),
    "hyperdist TPE s10": (_hyperdist, "tpe_s10"),
    "hyperdist random": (_hyperdist, "rand"),
    "Hyperopt TPE": (_hyperopt, "tpe"),
    "Optuna TPE": (_optuna, "tpe"),
    "Optuna TPE mv": (_optuna, "tpe_mv"),
}


def run_one(job):
    domain_name, method, seed, evals = job
    fn, variant = METHODS[method]
    t = time.perf_counter()
    losses = fn(DOMAINS[domain_name], seed, evals, variant)
    best = np.minimum.accumulate([np.inf if v is None else v for v in losses])
    return domain_name, method, seed, [float(best[c - 1]) for c in CHECKPOINTS if c <= evals], time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    jobs = [(d, m, s, args.evals) for d in args.domains for m in args.methods for s in range(args.seeds)]
    results: dict = {}
    seconds: dict = {}
    with mp.get_context("spawn").Pool(args.processes) as pool:
        for d, m, s, bests, secs in pool.imap_unordered(run_one, jobs):
            results.setdefault((d, m), []).append(bests)
            seconds.setdefault(m, []).append(secs)
    lines = [f"{args.seeds} seeds, {args.evals} evaluations; cells: median [25th-75th percentile] of the best loss", ""]
    checkpoints = [c for c in CHECKPOINTS if c <= args.evals]
    for ci, c in enumerate(checkpoints):
        lines += [f"### best loss after {c} evaluations", "",
                  "| domain | " + " | ".join(args.methods) + " |", "|---" * (len(args.methods) + 1) + "|"]
        for d in args.domains:
            cells = []
            for m in args.methods:
                v = np.array([b[ci] for b in results[(d, m)]])
                cells.append(f"{np.median(v):.4g} [{np.percentile(v, 25):.3g}, {np.percentile(v, 75):.3g}]")
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
        lines.append("")
    last = len(checkpoints) - 1
    med = {(d, m): float(np.median([b[last] for b in results[(d, m)]])) for d in args.domains for m in args.methods}
    for ours in [m for m in args.methods if m.startswith("hyperdist TPE")]:
        for peer in [m for m in args.methods if not m.startswith("hyperdist")]:
            wins = sum(med[(d, ours)] <= med[(d, peer)] for d in args.domains)
            lines.append(f"- {ours} median <= {peer} median after {checkpoints[last]}: {wins}/{len(args.domains)} domains")
    lines.append("")
    lines.append("seconds per run (median): " + ", ".join(f"{m} {np.median(v):.2f}" for m, v in seconds.items()))
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
