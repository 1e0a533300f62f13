"""Two versions of hyperdist on `hyperdist search`, end to end, alternated (ABBA) on one server.

    python benchmarks/search_ab.py --workers 4 8 --repeats 3 before=/tmp/hd-OLD after=/tmp/hd-NEW [--out FILE]

Each VERSION is NAME=DIR (a directory holding a `hyperdist/` package, e.g. a `git archive` of a
commit, put first on PYTHONPATH), optionally followed by `+OPTIONS` for `hyperdist search`
(`q48=/tmp/hd-NEW+--queue 48`). Every run is search_run.run_search (500 trials, null objective,
`uniform10` by default), timed on the clock of issue 21; besides it reports how long the search
took to exit after its last result and the longest gap between two finishing times among trials
11-60 (where the coordinator's first model fit falls). Used for the A/B tables of issue 21 in
docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from pymongo import MongoClient

from distributed import _mmm
from envinfo import describe
from hyperdist.server.embedded import start_server, stop_server
from search_run import run_search

HERE = Path(__file__).resolve().parent
SHOWN = [("trials_per_s", "end to end trials/s", "{:.1f}"), ("steady_trials_per_s", "steady trials/s", "{:.1f}"),
         ("startup_s", "first result s", "{:.2f}"), ("exit_after_last_s", "exit after last s", "{:.2f}"),
         ("gap_s", "longest gap, trials 11-60, s", "{:.3f}"), ("server_ms_per_trial", "server ms/trial", "{:.2f}"),
         ("clients_cpu_s", "clients CPU s", "{:.2f}")]


def _versions(specs: list[str]) -> dict[str, tuple[dict, list[str] | None]]:
    out = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, options = rest.partition("+")
        out[name] = (dict(os.environ, PYTHONPATH=str(Path(path).resolve())), options.split() if options else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("versions", nargs=2, metavar="NAME=DIR[+OPTIONS]")
    ap.add_argument("--workers", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--space", default="uniform10")
    ap.add_argument("--out", default=str(HERE / "results" / "search_ab.md"))
    args = ap.parse_args()
    versions = _versions(args.versions)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            for rep in range(args.repeats):
                for k in args.workers:
                    for name in (list(versions) if rep % 2 == 0 else list(versions)[::-1]):
                        gap: dict = {}
                        env, options = versions[name]
                        row = run_search(server, k, args.trials, "null", args.space, tmp, env=env, extra=options,
                                         before_cleanup=lambda: gap.update(_longest_gap(server.url)))
                        row.update(version=name, exit_after_last_s=row["wall_s"] - row["e2e_s"],
                                   load1=os.getloadavg()[0], **gap)
                        rows.append(row)
                        print(json.dumps({k2: row[k2] for k2, _, _ in SHOWN if k2 in row} | {"version": name, "workers": k}),
                              flush=True)
        finally:
            stop_server(tmp / "server")
    lines = [f"`python benchmarks/search_ab.py {' '.join(sys.argv[1:])}`", "",
             f"{args.trials} trials, null objective, space {args.space}; median [min, max] over {args.repeats} runs "
             "per version and worker count, the versions alternated (ABBA) on one embedded server.", "",
             "| workers | version | " + " | ".join(title for _, title, _ in SHOWN) + " | load1 after |",
             "|---|---|" + "---|" * (len(SHOWN) + 1)]
    for k in args.workers:
        for name in versions:
            rs = [r for r in rows if r["workers"] == k and r["version"] == name]
            loads = [r["load1"] for r in rs]
            lines.append(f"| {k} | {name} | " + " | ".join(_mmm([r[key] for r in rs if key in r], fmt)
                                                          for key, _, fmt in SHOWN)
                         + f" | {min(loads):.1f}-{max(loads):.1f} |")
    lines += ["", describe()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))
    print(Path(args.out).read_text())


def _longest_gap(url: str) -> dict:
    """The longest pause between two finishing times among trials 11-60 of the search just run."""
    client = MongoClient(url)
    try:
        db = max((d for d in client.list_database_names() if d.startswith("bench_")), key=lambda d: int(d.rsplit("_", 1)[1]))
        times = sorted(d["finished"].timestamp() for d in client[db]["trials"].find({"state": "DONE"}, {"finished": 1}))
    finally:
        client.close()
    gaps = [times[i + 1] - times[i] for i in range(10, min(60, len(times) - 1))]
    return {"gap_s": max(gaps)} if gaps else {}


if __name__ == "__main__":
    main()
