"""Quality benchmark: best loss after 25/50/100 evaluations, hyperdist vs Hyperopt vs Optuna.

    python benchmarks/quality.py --seeds 10 --evals 100 --out benchmarks/results/quality.md

For every domain of `domains.py`, method and seed, one sequential search of `--evals` evaluations
is run and the best loss seen after 25, 50 and 100 evaluations is kept. Cells are the median and
the interquartile range over seeds. Every method of one seed sees the same objective noise.

Methods (`--methods`, default: all of them):

* hyperdist TPE with its defaults (`tpe.suggest`), explicitly multivariate
  (`partial(tpe.suggest, multivariate=True)`), explicitly univariate (`multivariate=False`), a few
  other settings of gamma and n_startup_jobs, and hyperdist's random search;
* Hyperopt TPE (defaults) and Hyperopt random search (the "random search" reference);
* Optuna's TPESampler(seed=...) with default settings, and with multivariate=True.

Searches run in `--processes` worker processes (quality does not depend on timing). Raw per-seed
results go to the `--out` path with the suffix .json, so tables can be rebuilt with `--from-json`.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from domains import DOMAINS  # noqa: E402
from envinfo import describe  # noqa: E402

CHECKPOINTS = (25, 50, 100)

# name -> (library, hyperdist tpe.suggest keywords or variant name); the order is the table's order
METHODS: dict[str, tuple[str, object]] = {
    "hd TPE": ("hyperdist", {}),
    "hd TPE mv": ("hyperdist", {"multivariate": True}),
    "hd TPE uni": ("hyperdist", {"multivariate": False}),
    "hd random": ("hyperdist", "rand"),
    "Hyperopt TPE": ("hyperopt", "tpe"),
    "Hyperopt random": ("hyperopt", "rand"),
    "Optuna TPE": ("optuna", "tpe"),
    "Optuna TPE mv": ("optuna", "tpe_mv"),
    # configurations of hyperdist's TPE, to justify the defaults
    # (gamma is Hyperopt's: ceil(gamma * sqrt(n_ok)) trials form "below", so at 100 trials 0.25 -> 3,
    # 0.5 -> 5, 1 -> 10; g10% is Optuna's default rule, ceil(0.1 * n_ok) at most 25, i.e. 3 at 25, 10 at 100)
    "hd mv s10": ("hyperdist", {"multivariate": True, "n_startup_jobs": 10}),
    "hd mv g0.5": ("hyperdist", {"multivariate": True, "gamma": 0.5}),
    "hd mv g1": ("hyperdist", {"multivariate": True, "gamma": 1.0}),
    "hd mv g10%": ("hyperdist", {"multivariate": True, "gamma": lambda n_ok: min(math.ceil(0.1 * n_ok), 25)}),
    "hd mv g1 s10": ("hyperdist", {"multivariate": True, "gamma": 1.0, "n_startup_jobs": 10}),
    "hd uni s10": ("hyperdist", {"multivariate": False, "n_startup_jobs": 10}),
    "hd uni g1": ("hyperdist", {"multivariate": False, "gamma": 1.0}),
    "hd uni g1 s10": ("hyperdist", {"multivariate": False, "gamma": 1.0, "n_startup_jobs": 10}),
    # issue 17 (benchmarks/real/): the defaults before it, and the options it added
    "hd TPE before": ("hyperdist", {"near_duplicates": None, "above_smoothing": None, "improvement_floor": None}),
    "hd nd0 as0": ("hyperdist", {"near_duplicates": 0.0, "above_smoothing": 0.0, "improvement_floor": None}),
    # issue 17, second round: options weighed against quadratic1 and diabetes_models (benchmarks/README.md)
    "hd if.3": ("hyperdist", {"improvement_floor": 0.3}),
    "hd if.5": ("hyperdist", {"improvement_floor": 0.5}),
}
MAIN = ["hd TPE", "hd TPE mv", "hd TPE uni", "hd random", "Hyperopt TPE", "Hyperopt random", "Optuna TPE",
        "Optuna TPE mv"]
PEERS = ["Hyperopt TPE", "Optuna TPE", "Optuna TPE mv"]


class _Recorder:
    """The objective: scores a configuration and logs (loss, noise-free loss) in evaluation order."""

    def __init__(self, domain, seed: int) -> None:
        self.domain = domain
        self.rng = np.random.default_rng(seed + 10_000)
        self.log: list[tuple[float, float]] = []

    def __call__(self, cfg) -> float:
        loss = float(self.domain.loss(cfg, self.rng))
        self.log.append((loss, float(self.domain.clean(cfg)) if self.domain.clean else loss))
        return loss


def _run_hyperdist(domain, seed, evals, variant, rec):
    import hyperdist

    algo = hyperdist.rand.suggest if variant == "rand" else functools.partial(hyperdist.tpe.suggest, **variant)
    hyperdist.fmin(rec, domain.space(hyperdist.hp), algo=algo, max_evals=evals, trials=hyperdist.Trials(),
                   rstate=np.random.default_rng(seed), show_progressbar=False)


def _run_hyperopt(domain, seed, evals, variant, rec):
    import hyperopt

    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    algo = {"tpe": hyperopt.tpe.suggest, "rand": hyperopt.rand.suggest}[variant]
    hyperopt.fmin(rec, domain.space(hyperopt.hp), algo=algo, max_evals=evals, trials=hyperopt.Trials(),
                  rstate=np.random.default_rng(seed), show_progressbar=False)


def _run_optuna(domain, seed, evals, variant, rec):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")  # multivariate=True is flagged experimental
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=variant == "tpe_mv")
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: rec(domain.optuna(t)), n_trials=evals)


RUNNERS = {"hyperdist": _run_hyperdist, "hyperopt": _run_hyperopt, "optuna": _run_optuna}


def _init_worker() -> None:
    """Import every library once, when the worker starts, so that one run sees one version of each."""
    import hyperdist  # noqa: F401
    import hyperopt  # noqa: F401
    import optuna  # noqa: F401


def run_one(job):
    """One search; returns best observed loss and noise-free loss of that best trial per checkpoint."""
    domain_name, method, seed, evals = job
    lib, variant = METHODS[method]
    domain = DOMAINS[domain_name]
    rec = _Recorder(domain, seed)
    t = time.perf_counter()
    RUNNERS[lib](domain, seed, evals, variant, rec)
    secs = time.perf_counter() - t
    loss = np.array([lc[0] for lc in rec.log])
    clean = np.array([lc[1] for lc in rec.log])
    best, best_clean = [], []
    for c in CHECKPOINTS:
        if c <= evals:
            i = int(np.argmin(loss[:c]))
            best.append(float(loss[i]))
            best_clean.append(float(clean[i]))
    return {"domain": domain_name, "method": method, "seed": seed, "best": best, "best_clean": best_clean,
            "seconds": secs, "n": len(loss)}


def _cell(values: np.ndarray) -> str:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:.4g} [{q1:.3g}, {q3:.3g}]"


def _table(rows, domains, methods, ci, key="best") -> list[str]:
    lines = ["| domain | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for d in domains:
        cells = [_cell(np.array([r[key][ci] for r in rows[(d, m)]])) for m in methods]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return lines


def _compare(rows, domains, ours, peer, ci):
    """(median <= count, clearly better, clearly worse) over domains; 'clearly' = Mann-Whitney p < 0.05."""
    from scipy.stats import mannwhitneyu

    le = better = worse = 0
    worse_names = []
    for d in domains:
        a = np.array([r["best"][ci] for r in rows[(d, ours)]])
        b = np.array([r["best"][ci] for r in rows[(d, peer)]])
        le += np.median(a) <= np.median(b)
        if np.all(a == a[0]) and np.all(b == a[0]):
            continue
        p = mannwhitneyu(a, b, alternative="two-sided").pvalue
        if p < 0.05:
            if np.median(a) < np.median(b):
                better += 1
            else:
                worse += 1
                worse_names.append(d)
    return le, better, worse, worse_names


def _mean_ranks(rows, domains, methods, ci) -> dict[str, float]:
    """Average over domains of each method's rank (1 = best) by median best loss; ties share a rank."""
    from scipy.stats import rankdata

    ranks = np.array([rankdata([np.median([r["best"][ci] for r in rows[(d, m)]]) for m in methods])
                      for d in domains])
    return dict(zip(methods, ranks.mean(axis=0)))


def report(results: list[dict], seeds: int, evals: int, domains: list[str], methods: list[str]) -> str:
    rows: dict = {}
    for r in results:
        rows.setdefault((r["domain"], r["method"]), []).append(r)
    checkpoints = [c for c in CHECKPOINTS if c <= evals]
    main = [m for m in MAIN if m in methods]
    configs = [m for m in methods if m not in MAIN]
    out = [f"{seeds} seeds per cell, {evals} evaluations per search. Cells: median [25th percentile, "
           "75th percentile] over seeds of the best loss seen so far (lower is better).", "",
           "Methods: hd = hyperdist; `hd TPE` = `tpe.suggest` with its defaults; mv = multivariate=True; "
           "uni = multivariate=False; sN = n_startup_jobs=N; gX = gamma=X; g10% = gamma=ceil(0.1 n) capped at 25 (Optuna's rule); Hyperopt random = "
           "`hyperopt.rand.suggest`; Optuna TPE = `TPESampler(seed=seed)`; Optuna TPE mv = the same with "
           "multivariate=True.", ""]
    for ci, c in enumerate(checkpoints):
        out += [f"### Best loss after {c} evaluations", ""] + _table(rows, domains, main, ci) + [""]
    last = len(checkpoints) - 1
    noisy = [d for d in domains if DOMAINS[d].clean is not None]
    if noisy:
        out += [f"### Noisy domains: noise-free loss of the best-observed configuration after "
                f"{checkpoints[last]} evaluations", "",
                "The best *observed* loss of a noisy domain rewards lucky draws; this is the expected loss "
                "of the configuration that was picked as best.", ""]
        out += _table(rows, noisy, main, last, key="best_clean") + [""]
    if configs:
        ref = [m for m in ("hd TPE", "hd TPE mv", "hd TPE uni", "Hyperopt TPE", "Optuna TPE") if m in methods]
        out += [f"### hyperdist TPE configurations: best loss after {checkpoints[last]} evaluations", ""]
        out += _table(rows, domains, ref + configs, last) + [""]
    out += ["### Summary", ""]
    ours_list = [m for m in methods if m.startswith("hd") and m != "hd random"]
    peers = [p for p in PEERS if p in methods]
    if peers:
        out += ["Per checkpoint: number of domains on which the hyperdist configuration's median is <= the "
                "peer's median; in brackets, domains where the difference is clear (two-sided Mann-Whitney "
                "U over seeds, p < 0.05) as +better / -worse.", ""]
        head = [f"{p} @{c}" for p in peers for c in checkpoints]
        out += ["| hyperdist | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
        for ours in ours_list:
            cells = []
            for p in peers:
                for ci, _ in enumerate(checkpoints):
                    le, b, w, _names = _compare(rows, domains, ours, p, ci)
                    cells.append(f"{le}/{len(domains)} (+{b}/-{w})")
            out.append(f"| {ours} | " + " | ".join(cells) + " |")
        out.append("")
        if "hd TPE" in methods:
            for p in peers:
                le, _b, w, names = _compare(rows, domains, "hd TPE", p, last)
                out.append(f"- **hd TPE median <= {p} median after {checkpoints[last]}: {le}/{len(domains)} "
                           f"domains**; clearly worse (p < 0.05) on {w}: {', '.join(names) or 'none'}")
            out.append("")
    ranks = {ci: _mean_ranks(rows, domains, methods, ci) for ci in range(len(checkpoints))}
    out += ["Mean rank over domains of each method's median (1 = best of the "
            f"{len(methods)} methods):", "",
            "| method | " + " | ".join(f"@{c}" for c in checkpoints) + " |", "|---" * (len(checkpoints) + 1) + "|"]
    for m in sorted(methods, key=lambda m: ranks[last][m]):
        out.append(f"| {m} | " + " | ".join(f"{ranks[ci][m]:.2f}" for ci in range(len(checkpoints))) + " |")
    out.append("")
    secs = {m: [r["seconds"] for d in domains for r in rows[(d, m)]] for m in methods}
    out.append("Wall seconds per search of " + f"{evals} evaluations (median over domains and seeds): "
               + ", ".join(f"{m} {np.median(v):.2f}" for m, v in secs.items()))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per domain and method")
    ap.add_argument("--seed-offset", type=int, default=0, help="use seeds OFFSET..OFFSET+N-1 (held-out checks)")
    ap.add_argument("--evals", type=int, default=100, help="evaluations per search")
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the Markdown report here (and raw results to .json)")
    ap.add_argument("--from-json", type=Path, help="rebuild the report from a previous run's raw results")
    ap.add_argument("--reuse", type=Path, help="take the results of methods not in --methods from this previous "
                    "run's .json (same seeds, evals and domains; every search is deterministic given its seed), "
                    "e.g. to re-run only hyperdist after a change")
    args = ap.parse_args()
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        text = report(raw["results"], raw["seeds"], raw["evals"], raw["domains"], raw["methods"])
        text += "\n\n" + raw.get("footer", "")
    else:
        slow_first = sorted(args.methods, key=lambda m: METHODS[m][0] == "hyperdist")
        seeds = range(args.seed_offset, args.seed_offset + args.seeds)
        jobs = [(d, m, s, args.evals) for m in slow_first for d in args.domains for s in seeds]
        where = describe()  # before the run: the code it reports is the code the workers import
        started = time.perf_counter()
        results = []
        with mp.get_context("spawn").Pool(args.processes, initializer=_init_worker) as pool:
            for i, r in enumerate(pool.imap_unordered(run_one, jobs), 1):
                results.append(r)
                if i % 100 == 0 or i == len(jobs):
                    print(f"[{i}/{len(jobs)} searches, {time.perf_counter() - started:.0f} s]", file=sys.stderr)
        wall = time.perf_counter() - started
        methods = list(args.methods)
        if args.reuse:
            raw = json.loads(args.reuse.read_text())
            assert (raw["seeds"], raw["evals"]) == (args.seeds, args.evals), "--reuse: other seeds or evals"
            wanted = set(seeds)
            old = [r for r in raw["results"] if r["method"] not in methods and r["domain"] in args.domains
                   and r["seed"] in wanted]
            methods = [m for m in raw["methods"] if m not in methods] + methods
            methods = sorted(methods, key=list(METHODS).index)
            results += old
            where += f" Results of {', '.join(m for m in methods if m not in args.methods)} reused from {args.reuse}."
        args.methods = methods
        text = report(results, args.seeds, args.evals, args.domains, args.methods)
        footer = (f"Seeds {seeds.start}..{seeds.stop - 1}. Total wall time {wall:.0f} s with {args.processes} "
                  f"processes. {where}")
        text += "\n\n" + footer
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(
                {"seeds": args.seeds, "evals": args.evals, "domains": args.domains, "methods": args.methods,
                 "footer": footer, "results": results}))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
