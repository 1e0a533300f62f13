"""Start-up of `hyperdist search` on a running server: launch to the first finished trial (issue 21).

    python benchmarks/startup.py --workers 4 --repeats 9 [--baseline DIR] [--out FILE]

Each run launches `hyperdist search benchmarks/objectives.py:null --space benchmarks/spaces.py:uniform10
--workers K --mongo URL` (the console script, fresh interpreters) on one embedded SecantusDB started
beforehand, and reads from the stored documents and /proc when each step was done (see
search_run.run_search): the experiment created, the first suggestions stored, the workers spawned,
their first claim, the first result. `--baseline DIR` also runs the hyperdist code in DIR (e.g. a
`git archive` of an older commit) through PYTHONPATH, interleaved with the work tree's (ABBA), so
both see the same load. It then times the imports alone: the worker's and the search's modules in
a fresh interpreter each, CPU seconds (user + system) and wall seconds. It also reports how long
the search took to exit after its last result.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import _mmm
from search_run import run_search
from envinfo import describe
from hyperdist.server.embedded import start_server, stop_server

HERE = Path(__file__).resolve().parent
IMPORTS = {
    "worker": "from hyperdist.cli import main; import hyperdist.distributed.worker, hyperdist.store",
    "search": "from hyperdist.cli import main; from hyperdist.algorithms import rand, tpe; "
              "import hyperdist.distributed.coordinator, hyperdist.server.launcher, hyperdist.local.progress, hyperdist.objective.pruning",
    "search + scipy.special": "from hyperdist.cli import main; from hyperdist.algorithms import rand, tpe; "
                              "import hyperdist.distributed.coordinator, hyperdist.server.launcher, scipy.special",
}
STEPS = ["experiment_created", "first_suggestions", "workers_spawned", "worker_ready_median", "first_claim"]


def time_imports(code: str, env: dict) -> tuple[float, float]:
    """(CPU s, wall s) of a fresh interpreter that runs `code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd="/")
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--trials", type=int, default=40, help="max-evals of each search")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--baseline", help="a directory holding another version's hyperdist/ package")
    ap.add_argument("--out", default=str(HERE / "results" / "startup.md"))
    args = ap.parse_args()
    versions = {"work tree": dict(os.environ)}
    if args.baseline:
        base = str(Path(args.baseline).resolve())
        versions[f"baseline {base}"] = dict(os.environ, PYTHONPATH=base)
    rows: list[dict] = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            for rep in range(args.repeats):
                order = list(versions) if rep % 2 == 0 else list(versions)[::-1]
                for name in order:
                    row = run_search(server, args.workers, args.trials, "null", "uniform10", tmp, env=versions[name])
                    row.update(version=name, load1=os.getloadavg()[0])
                    for what, code in IMPORTS.items():
                        row[f"imports {what}"] = time_imports(code, versions[name])
                    rows.append(row)
                    print(json.dumps({k: row[k] for k in ("version", "startup_s", "wall_s", "e2e_s", "startup", "load1")}), flush=True)
        finally:
            stop_server(tmp / "server")
    lines = [f"`python benchmarks/startup.py {' '.join(sys.argv[1:])}`", "",
             f"`hyperdist search ... --workers {args.workers} --mongo URL` on a running embedded server, {args.trials} "
             "trials, null objective, space uniform10; seconds after the launch, median [min, max] over "
             f"{args.repeats} runs per version, versions interleaved. Steps: the experiment created (the search's "
             "interpreter, imports, connect), the first suggestions stored, the first worker spawned (/proc), a "
             "worker's own start to its first claim (median over the workers), the first claim, the first result.",
             "`exit after last`: the search process's exit less the last completion (what a person waits for "
             "at the end).",
             "", "| version | " + " | ".join(STEPS) + " | first result | exit after last | load1 after |",
             "|---|" + "---|" * (len(STEPS) + 3)]
    for name in versions:
        rs = [r for r in rows if r["version"] == name]
        cells = [_mmm([r["startup"][k] for r in rs if r["startup"].get(k) is not None], "{:.2f}") for k in STEPS]
        loads = [r["load1"] for r in rs]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_mmm([r['startup_s'] for r in rs], '{:.2f}')} | "
                     f"{_mmm([r['wall_s'] - r['e2e_s'] for r in rs], '{:.2f}')} | {min(loads):.1f}-{max(loads):.1f} |")
    lines += ["", "Imports alone in a fresh interpreter, CPU s (user + system) and wall s, median [min, max]:", "",
              "| version | " + " | ".join(IMPORTS) + " |", "|---|" + "---|" * len(IMPORTS)]
    for name in versions:
        rs = [r for r in rows if r["version"] == name]
        lines.append(f"| {name} | " + " | ".join(
            f"CPU {_mmm([r[f'imports {w}'][0] for r in rs], '{:.2f}')}, wall {_mmm([r[f'imports {w}'][1] for r in rs], '{:.2f}')}"
            for w in IMPORTS) + " |")
    lines += ["", f"1-minute load average before: {load0:.2f} (nproc {os.cpu_count()}).", "", describe()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
