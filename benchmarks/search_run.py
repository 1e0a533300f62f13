"""One `hyperdist search` on a running server, timed as a user runs it (issue 21).

`run_search` launches the console script (`hyperdist search OBJECTIVE --space SPACE --workers K
--mongo URL`: fresh interpreters for the coordinator and every worker) and reads, from the stored
trial documents, /proc and the server's opcounters: the clocks of peer_process.clocks (end to end
from the launch, steady between the 20% and 80% marks), the start-up broken down, the server's
and the clients' CPU and, with `count`, every process's commands by shape (counting/).
Used by distributed.py (throughput), startup.py and server_profile.py.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from pymongo import MongoClient

from hyperdist.server.embedded import LocalServer
from peer_process import clocks

HERE = Path(__file__).resolve().parent
OBJECTIVES = HERE / "objectives.py"
SPACES_FILE = HERE / "spaces.py"
HYPERDIST = Path(sys.executable).parent / "hyperdist"  # the console script of this environment
OPS = ("insert", "query", "update", "delete", "getmore", "command")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _started_at(pid: int) -> float | None:
    """When a process started, in epoch seconds (its /proc start time is in clock ticks since boot)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=dt.timezone.utc).timestamp()  # BSON dates are UTC


def _opcounters(client: MongoClient) -> dict:
    return {k: int(v) for k, v in client.admin.command("serverStatus").get("opcounters", {}).items() if k in OPS}


def run_search(server: LocalServer, n_workers: int, trials: int, objective: str, space: str, tmp: Path,
               env: dict | None = None, before_cleanup: Callable[[], None] | None = None,
               extra: list[str] | None = None, count: bool = False,
               on_launch: Callable[[int], None] | None = None) -> dict:
    """One `hyperdist search` on the running server, timed from its launch to the last finished trial.
    `env`: the search's environment (startup.py points PYTHONPATH at another commit's code);
    `before_cleanup` runs before the search's database is dropped (server_profile.py stops py-spy);
    `extra`: more `hyperdist search` options (a variant, e.g. ["--queue", "32"]); `count`: every
    process counts its commands (counting/sitecustomize.py; costs the clients some CPU, so it is
    for the command tables, not for timed comparisons)."""
    db = f"bench_{objective}_{space}_{n_workers}_{time.time_ns()}"
    work = tmp / db
    work.mkdir()
    client = MongoClient(server.url)
    ops0, cpu0 = _opcounters(client), cpu_seconds(server.pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [str(HYPERDIST), "search", f"{OBJECTIVES}:{objective}", "--space", f"{SPACES_FILE}:{space}",
           "--max-evals", str(trials), "--workers", str(n_workers), "--mongo", server.url, "--db", db,
           "--exp", "tp", "--no-progress", "--data-dir", str(work), *(extra or [])]
    if count:
        (work / "counts").mkdir()
        env = dict(env or os.environ, HYPERDIST_COUNT_DIR=str(work / "counts"), PYTHONPATH=os.pathsep.join(
            [str(HERE / "counting"), str(HERE), *filter(None, [(env or os.environ).get("PYTHONPATH")])]))
    with open(work / "search.out", "wb") as out:
        t_launch = time.time()
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
        if on_launch is not None:
            on_launch(proc.pid)
        spawned: dict[int, float | None] = {}
        marks: list[dict] = []  # with `count`: the 20% and 80% marks (finished trials, server CPU, opcounters)
        while proc.poll() is None:  # the workers' pids and start times, while they live
            for pid in _children(proc.pid):
                spawned.setdefault(pid, _started_at(pid))
            if count and len(marks) < 2:
                done = client[db]["trials"].count_documents({"exp_key": "tp", "state": "DONE"})
                if done >= (0.2, 0.8)[len(marks)] * trials:
                    (work / "counts" / f"mark.{len(marks) + 1}").touch()
                    marks.append({"done": done, "server_cpu": cpu_seconds(server.pid), "ops": _opcounters(client)})
            time.sleep(0.02 if not count else 0.05)
    t_exit = time.time()
    cpu1, ops1 = cpu_seconds(server.pid), _opcounters(client)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(work / 'search.out').read_text()[-2000:]}")
    tdb = client[db]
    exp = tdb["experiments"].find_one({"_id": "tp"})
    docs = list(tdb["trials"].find({"exp_key": "tp"}, {"state": 1, "result.status": 1, "created": 1, "claimed": 1,
                                                       "finished": 1, "owner": 1}))
    ok = [_epoch(d["finished"]) for d in docs if d.get("state") == "DONE" and (d.get("result") or {}).get("status") == "ok"]
    claims: dict[str, float] = {}
    for d in docs:
        if d.get("claimed") is not None and d.get("owner"):
            claims[d["owner"]] = min(claims.get(d["owner"], float("inf")), _epoch(d["claimed"]))
    starts = {pid: t for pid, t in spawned.items() if t is not None}
    # a worker's owner is "host:pid": its first claim less its own start is its start-up
    worker_ready = [claims[o] - starts[int(o.rsplit(":", 1)[1])] for o in claims
                    if o.rsplit(":", 1)[1].isdigit() and int(o.rsplit(":", 1)[1]) in starts]
    startup = {
        "experiment_created": _epoch(exp["created"]) - t_launch,
        "first_suggestions": min(_epoch(d["created"]) for d in docs) - t_launch,
        "workers_spawned": (min(starts.values()) - t_launch) if starts else None,
        "worker_ready_median": statistics.median(worker_ready) if worker_ready else None,
        "first_claim": min(claims.values()) - t_launch if claims else None,
    }
    if before_cleanup is not None:
        before_cleanup()
    commands = _commands(work / "counts", proc.pid) if count else {}
    steady = _steady(work / "counts", proc.pid, marks) if count and len(marks) == 2 else {}
    tdb["trials"].delete_many({})  # emptied first: SecantusDB drops an empty collection in ms
    client.drop_database(db)
    client.close()
    ok = sorted(ok)[:trials]  # a trial running when the search stopped may still report: the first `trials` count
    n_ok = len(ok)
    user = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    ops = {k: ops1.get(k, 0) - ops0.get(k, 0) for k in OPS}
    return {"system": " ".join(["hyperdist", *(extra or [])]), "workers": n_workers, "objective": objective, "space": space, "trials": trials,
            **clocks(t_launch, ok), "wall_s": t_exit - t_launch, "startup": startup,
            "server_cpu_s": cpu1 - cpu0, "clients_cpu_s": user,
            "server_ms_per_trial": 1000 * (cpu1 - cpu0) / max(1, n_ok),
            "ops_per_trial": {k: v / max(1, n_ok) for k, v in ops.items() if v},
            **({"commands_per_trial": {role: {name: n / max(1, n_ok) for name, n in sorted(shapes.items())}
                                       for role, shapes in commands.items()}} if count else {}),
            **steady,
            "notes": "`hyperdist search --workers K --mongo URL` (console script) on a running embedded SecantusDB; "
                     "completion times: the trials' `finished`"}


def _steady(counts: Path, search_pid: int, marks: list[dict]) -> dict:
    """Between the 20% and 80% marks: commands per trial by process and shape, server CPU per trial."""
    first, last = _commands(counts, search_pid, ".1"), _commands(counts, search_pid, ".2")
    trials = marks[1]["done"] - marks[0]["done"]
    per = {role: {shape: (n - first[role].get(shape, 0)) / trials for shape, n in shapes.items()
                  if n != first[role].get(shape, 0)} for role, shapes in last.items()}
    return {"steady_commands_per_trial": per, "steady_trials": trials,
            "steady_server_ms_per_trial": 1000 * (marks[1]["server_cpu"] - marks[0]["server_cpu"]) / trials,
            "steady_ops_per_trial": {k: (marks[1]["ops"].get(k, 0) - marks[0]["ops"].get(k, 0)) / trials for k in OPS
                                     if marks[1]["ops"].get(k, 0) != marks[0]["ops"].get(k, 0)}}


def _commands(counts: Path, search_pid: int, suffix: str = "") -> dict[str, dict[str, int]]:
    """Commands by shape (counted.py) of the search process ("coordinator") and of its workers, at
    exit or (suffix ".1", ".2") at a mark."""
    out: dict[str, dict[str, int]] = {"coordinator": {}, "workers": {}}
    for path in counts.glob(f"*.json{suffix}"):
        role = "coordinator" if path.name.split(".")[0] == str(search_pid) else "workers"
        for shape, n in json.loads(path.read_text())["shapes"].items():
            out[role][shape] = out[role].get(shape, 0) + n
    return out
