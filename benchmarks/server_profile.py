"""A trial's server CPU by command: py-spy samples the embedded SecantusDB during one `hyperdist search`.

    python benchmarks/server_profile.py [--workers 4] [--trials 500] [--space uniform10] [--out FILE]

A fresh server is started, py-spy (`pip install py-spy`; it attaches with ptrace, so run as root or
with ptrace allowed) records the server process while `hyperdist search ... --workers K --mongo URL`
runs (search_run.run_search), and every sample is charged to the command handler on its stack
(`find`, `update`, `insert`, `getMore`, `count`, ... as SecantusDB's dispatch table names them) or,
outside any handler, to "wire and dispatch" (socket reads, BSON, session and bookkeeping around the
handler). Shares of the samples times the server's CPU per trial (from /proc, same run) give the
milliseconds of server CPU each kind of command costs a trial. Every process of the search also
counts its commands by shape (run_search(count=True)), so the table says how many of each a trial
needs. py-spy samples the threads it finds running; samples whose innermost frame waits on a
socket or an event are counted apart, so the shares are of the work the server did, not of wall
time (py-spy's `--gil` mode, only the thread holding the GIL, took too few samples under load). Per-command charges outside the handlers show up as their
own rows (e.g. SecantusDB's profiler check, `_maybe_record_profile`, on every command).
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from search_run import run_search
from envinfo import describe
from hyperdist.server.embedded import start_server, stop_server

HERE = Path(__file__).resolve().parent
# SecantusDB's handler function for each command the search sends (secantus/commands.py, _HANDLERS)
HANDLERS = {"_find": "find", "_update": "update", "_insert": "insert", "_get_more": "getMore", "_count": "count",
            "_aggregate": "aggregate", "_delete": "delete", "_hello": "hello", "_ping": "ping",
            "_server_status": "serverStatus", "_find_and_modify": "findAndModify", "_create_indexes": "createIndexes",
            "_end_sessions": "endSessions", "_list_indexes": "listIndexes", "_kill_cursors": "killCursors",
            "_drop_database": "dropDatabase", "_maybe_record_profile": "profiler check (every command)"}
# innermost frames of a thread that waits (for a request on its socket, a connection, an event)
WAITING = ("_readable", "_recv_exactly", "socket.accept", "Event.wait", "Condition.wait", "select")


def classify(raw: Path) -> collections.Counter:
    """py-spy's raw (collapsed) stacks: 'frame;frame;... count', outermost first."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        kind = "waiting" if frames[-1].split(" (", 1)[0].strip().endswith(WAITING) else "wire and dispatch"
        for frame in frames:
            name = frame.split(" (", 1)[0].strip()
            if name in HANDLERS and "commands.py" in frame:
                kind = HANDLERS[name]
                break
        counts[kind] += int(n)
    return counts


def _coordinator_kind(frames: list[str]) -> str:
    """What the search process's main thread was doing in one py-spy sample."""
    def has(needle: str) -> bool:
        return any(needle in f for f in frames)

    if has("special.py"):
        return "run: importing scipy.special (TPE's first model fit)"
    if has("Coordinator.run"):
        if has("algorithms/tpe.py") or has("algorithms/parzen.py"):
            return "run: TPE suggestions"
        if has("receive_message") or has("_receive_data_on_socket") or has("recv_into"):
            return "run: waiting for the server's replies"
        if frames[-1].split(" (", 1)[0].strip().endswith("Coordinator.run"):
            return "run: sleeping between ticks"
        return "run: the coordinator's own code (ticks, history table, progress)"
    if has("wait_workers") or has("stop_workers") or has("_print_best"):
        return "after the last trial: waiting for the workers to exit"
    if has("_find_and_load"):
        return "before the loop: imports"
    return "before the loop: space, objective, connect, experiment (or other)"


def classify_coordinator(raw: Path) -> collections.Counter:
    """py-spy's raw stacks of the search process, main thread only (pymongo's monitor threads wait)."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit() and "Thread.run" not in stack and "_bootstrap" not in stack:
            counts[_coordinator_kind(stack.split(";"))] += int(n)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--space", default="uniform10")
    ap.add_argument("--objective", default="null")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--out", default=str(HERE / "results" / "server_profile.md"))
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            raw = tmp / "server.txt"
            spy = subprocess.Popen([pyspy, "record", "-p", str(server.pid), "-r", str(args.rate), "--format", "raw",
                                    "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # py-spy attached

            coord_raw = tmp / "coordinator.txt"
            spies = []

            def attach(pid: int) -> None:  # py-spy on the coordinator; --nonblocking: it does not pause it
                spies.append(subprocess.Popen([pyspy, "record", "-p", str(pid), "-r", str(args.rate), "--format", "raw",
                                               "-o", str(coord_raw), "--nonblocking", "--idle"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

            def stop_spy() -> None:  # before the benchmark drops the search's database
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                spy.wait(60)

            row = run_search(server, args.workers, args.trials, args.objective, args.space, tmp, before_cleanup=stop_spy,
                             count=True, on_launch=attach)
            for p in spies:
                p.wait(60)  # py-spy ends with the process it records
            coordinator = classify_coordinator(coord_raw) if coord_raw.exists() else collections.Counter()
            counts = classify(raw)
        finally:
            stop_server(tmp / "server")
    waiting = counts.pop("waiting", 0)
    total = sum(counts.values())
    ms = row["server_ms_per_trial"]
    lines = [f"`python benchmarks/server_profile.py {' '.join(sys.argv[1:])}`", "",
             f"`hyperdist search` ({args.objective}, space {args.space}, {args.workers} workers, {args.trials} trials) "
             f"on a fresh embedded server: {row['trials_per_s']:.1f} trials/s end to end, the server used "
             f"{row['server_cpu_s']:.2f} s of CPU = **{ms:.2f} ms per trial**; py-spy took {total} samples of the "
             f"server at {args.rate}/s ({waiting} more waited on a socket or event, left out) (load1 after {os.getloadavg()[0]:.1f}). Server operations per trial "
             "(opcounters): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(row["ops_per_trial"].items())) + ".", "",
             "| charged to | samples | share | server CPU ms per trial |", "|---|---|---|---|"]
    for kind, n in counts.most_common():
        lines.append(f"| {kind} | {n} | {100 * n / total:.1f}% | {ms * n / total:.2f} |")
    lines += ["", "Commands per trial by shape in the same run (pymongo command monitoring in every process of "
              "the search, counted.py; `find -> nothing` = reads that found no document, also counted in their shape):", "",
              "| process | command and the fields it filters on | per trial |", "|---|---|---|"]
    for role, shapes in row["commands_per_trial"].items():
        lines += [f"| {role} | `{shape}` | {n:.3f} |" for shape, n in sorted(shapes.items(), key=lambda kv: -kv[1])]
    if coordinator:
        n = sum(coordinator.values())
        lines += ["", f"Where the coordinator's main thread spent its time (py-spy, {n} samples at {args.rate}/s, "
                  "idle included, not pausing the process):", "", "| coordinator | samples | share |", "|---|---|---|"]
        lines += [f"| {kind} | {k} | {100 * k / n:.1f}% |" for kind, k in sorted(coordinator.items())]
    if "steady_commands_per_trial" in row:
        lines += ["", f"The same in the steady state only ({row['steady_trials']} trials between the 20% and 80% marks, "
                  "snapshots taken when the benchmark saw each mark): server CPU "
                  f"**{row['steady_server_ms_per_trial']:.2f} ms per trial**; opcounters per trial: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in sorted(row["steady_ops_per_trial"].items())) + ".", "",
                  "| process | command and the fields it filters on | per trial, steady |", "|---|---|---|"]
        for role, shapes in row["steady_commands_per_trial"].items():
            lines += [f"| {role} | `{shape}` | {n:.3f} |" for shape, n in sorted(shapes.items(), key=lambda kv: -kv[1])]
    lines += ["", describe()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
