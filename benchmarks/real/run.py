"""Real-task benchmark: hyperdist TPE against Hyperopt TPE, Optuna TPE (multivariate and independent) and
random search on the scikit-learn tasks of `tasks.py`, in one run.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/real/run.py --seeds 15 --evals 100 \
        --out benchmarks/results/real.md

For every task, method and seed one sequential search of `--evals` evaluations runs in this process
(one core; the objective's cost does not change what is proposed). Kept per search: every loss in
evaluation order, and which evaluations were a configuration not seen before in that search (numbers
rounded to 4 significant digits). The tables give the best loss after 40 and after `--evals`
evaluations (the 40-evaluation result is the prefix of the same search) and how diverse the
post-start-up trials were: distinct loss values among trials 21-40 and 21-100 (the models are
deterministic, so a repeated loss is almost always a near-duplicate configuration). Raw results go to
the `--out` path with the suffix .json; `--from-json` rebuilds the report, `--reuse` takes methods not
re-run from an earlier run's .json (every search is deterministic given its seed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per search, and no thread start-up per fit
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from envinfo import describe  # noqa: E402
from quality import RUNNERS  # noqa: E402
from real_report import report  # noqa: E402
from tasks import TASKS  # noqa: E402

# hyperdist's TPE as it was before issue 17 (these options did not exist; their values reproduce it)
BEFORE = {"near_duplicates": None, "above_smoothing": None, "improvement_floor": None}

# name -> (library, variant); the order is the tables' order
METHODS: dict[str, tuple[str, object]] = {
    "hd TPE": ("hyperdist", {}),
    "hd TPE before": ("hyperdist", BEFORE),
    "hd nd0 as0": ("hyperdist", {"near_duplicates": 0.0, "above_smoothing": 0.0, "improvement_floor": None}),
    "Hyperopt TPE": ("hyperopt", "tpe"),
    "Optuna TPE mv": ("optuna", "tpe_mv"),
    "Optuna TPE": ("optuna", "tpe"),
    "random": ("hyperdist", "rand"),
}
REFERENCE = ["random", "Hyperopt TPE", "Optuna TPE mv", "Optuna TPE"]


def variants(spec: list[str]) -> None:
    """Extra hyperdist configurations from NAME=key:value,key:value (tpe.suggest keywords, for trying options)."""
    import inspect

    import hyperdist

    known = set(inspect.signature(hyperdist.tpe.suggest).parameters) - {"new_ids", "domain", "trials", "seed"}
    for item in spec:
        name, _, kw = item.partition("=")
        opts: dict = {}
        for pair in filter(None, kw.split(",")):
            k, _, v = pair.partition(":")
            if k not in known:
                raise ValueError(f"--variant {item!r}: {k!r} is not a tpe.suggest keyword; expected one of {sorted(known)}")
            try:
                opts[k] = {"True": True, "False": False, "None": None}[v] if v in ("True", "False", "None") else float(v)
            except ValueError:
                raise ValueError(f"--variant {item!r}: {k}:{v!r} needs a number, True, False or None") from None
            if k in ("n_startup_jobs", "n_EI_candidates", "linear_forgetting", "max_components"):
                opts[k] = int(opts[k])
        if not name or not opts:
            raise ValueError(f"--variant {item!r}: expected NAME=key:value[,key:value...]")
        METHODS[name] = ("hyperdist", opts)


class Recorder:
    """The objective: evaluates a configuration and logs its loss and whether it is new to the search."""

    def __init__(self, task) -> None:
        self.task, self.losses, self.new, self.seen = task, [], [], set()
        self.objective_seconds = 0.0

    def __call__(self, cfg) -> float:
        key = _key(cfg)
        self.new.append(key not in self.seen)
        self.seen.add(key)
        t = time.process_time()
        loss = float(self.task.loss(cfg))
        self.objective_seconds += time.process_time() - t
        self.losses.append(loss)
        return loss


def _key(cfg) -> str:
    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in sorted(v.items())}
        if isinstance(v, float) and math.isfinite(v) and v != 0:
            return float(f"{v:.4g}")
        return v
    return json.dumps(norm(cfg), sort_keys=True, default=str)


def run_one(task_name: str, method: str, seed: int, evals: int) -> dict:
    lib, variant = METHODS[method]
    task = TASKS[task_name]
    rec = Recorder(task)
    t = time.process_time()
    RUNNERS[lib](task, seed, evals, variant, rec)
    cpu = time.process_time() - t
    return {"task": task_name, "method": method, "seed": seed, "losses": rec.losses, "new": rec.new,
            "cpu_seconds": cpu, "optimiser_cpu_seconds": cpu - rec.objective_seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=15, help="seeds OFFSET..OFFSET+N-1 per task and method")
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--variant", nargs="*", default=[], metavar="NAME=key:value,...",
                    help="extra hyperdist configurations, e.g. 'hd bp0=branch_prior:0'")
    ap.add_argument("--out", type=Path, help="Markdown report here, raw results next to it (.json)")
    ap.add_argument("--from-json", type=Path, help="rebuild the report from a previous run's raw results")
    ap.add_argument("--only-seeds", type=int, nargs=2, metavar=("FIRST", "LAST"),
                    help="with --from-json: report seeds FIRST..LAST only (e.g. the seeds no decision looked at)")
    ap.add_argument("--reuse", type=Path, help="take methods not in --methods from this earlier run's .json")
    args = ap.parse_args()
    try:
        variants(args.variant)
    except ValueError as e:
        ap.error(str(e))
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"--methods: unknown {unknown}; expected some of {list(METHODS)} or a --variant name")
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        first, last = args.only_seeds or (-1, 1 << 62)
        results = [r for r in raw["results"] if first <= r["seed"] <= last]
        text = report(results, raw["methods"], raw["tasks"]) + "\n\n" + raw.get("footer", "")
    else:
        import hyperdist  # noqa: F401  (import every library before the clock starts)
        import hyperopt  # noqa: F401
        import optuna  # noqa: F401

        seeds = range(args.seed_offset, args.seed_offset + args.seeds)
        where = describe()
        started, results = time.perf_counter(), []
        jobs = [(t, m, s) for t in args.tasks for s in seeds for m in args.methods]
        partial = args.out.with_suffix(".partial.jsonl") if args.out else None
        for i, (t, m, s) in enumerate(jobs, 1):
            results.append(run_one(t, m, s, args.evals))
            if partial:  # what finished survives an interrupted run
                with partial.open("a") as f:
                    f.write(json.dumps(results[-1]) + "\n")
            if i % 20 == 0 or i == len(jobs):
                print(f"[{i}/{len(jobs)} searches, {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
        methods = list(args.methods)
        described = {m: METHODS[m][1] for m in methods if isinstance(METHODS[m][1], dict)}
        if args.reuse:
            raw = json.loads(args.reuse.read_text())
            wanted = set(seeds)
            old = [r for r in raw["results"] if r["method"] not in methods and r["task"] in args.tasks
                   and r["seed"] in wanted and len(r["losses"]) >= args.evals]
            reused = sorted({r["method"] for r in old})
            described.update({m: v for m, v in raw.get("variants", {}).items() if m in reused})
            methods = reused + methods
            results += old
            where += f" Results of {', '.join(reused)} reused from {args.reuse.name} (deterministic given the seed)."
        footer = (f"Seeds {seeds.start}..{seeds.stop - 1}, {args.evals} evaluations, one process; wall "
                  f"{time.perf_counter() - started:.0f} s. {where}")
        text = report(results, methods, args.tasks) + "\n\n" + footer
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(
                {"evals": args.evals, "seeds": list(seeds), "tasks": args.tasks, "methods": methods,
                 "variants": described,
                 "footer": footer, "results": results}, default=str))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        if not args.from_json:
            args.out.with_suffix(".partial.jsonl").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
