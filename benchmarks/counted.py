"""Run the hyperdist CLI with every MongoDB command it sends counted by pymongo command monitoring.

    python benchmarks/counted.py OUT.json worker --mongo URL --exp KEY ...

When the process exits it writes {"commands": {name: count}, "cpu_s": ...} to OUT.json, so the
distributed benchmark can add up the round trips of worker processes it does not run itself. On
SIGUSR1 it writes the counts so far to OUT.json.<k> (k = 1, 2, ...): two such snapshots bracket the
steady state, without the start-up and the tail.

`counting/sitecustomize.py` calls `install` in every Python process started with
HYPERDIST_COUNT_DIR set (and benchmarks/counting:benchmarks on PYTHONPATH), so the processes that
`hyperdist search` spawns itself are counted too (search_run.run_search(count=True)).
"""
from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import signal
import sys
import threading
import time

from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.returned: collections.Counter = collections.Counter()  # documents in find replies
        self.shapes: collections.Counter = collections.Counter()    # command and the fields it filters on
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cmd = event.command
        if event.command_name == "find":
            shape = ",".join(sorted(cmd.get("filter") or {}))
        elif event.command_name == "update":
            shape = "+".join(",".join(sorted(u.get("q") or {})) for u in cmd.get("updates") or [])
        else:
            shape = ""
        with self.lock:
            self.counts[event.command_name] += 1
            self.shapes[f"{event.command_name} {shape}".strip()] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if cursor is not None:
            n = len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])
            with self.lock:
                self.returned[event.command_name] += n
                if n == 0:  # a read that found nothing (e.g. an empty queue), counted apart as well
                    self.shapes[f"{event.command_name} -> nothing"] += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def snapshot(self) -> dict:
        with self.lock:
            return {"commands": dict(self.counts), "returned": dict(self.returned), "shapes": dict(self.shapes),
                    "cpu_s": time.process_time()}


def install(out: str, marks: str | None = None) -> CommandCounter:
    """Count every command this process sends from now on; write the counts to `out` at exit, and
    to `out`.<k> on the k-th SIGUSR1, or (with `marks`, a directory) when a file `mark.<k>` appears
    there: the benchmark marks the steady state without signalling processes it did not start."""
    counter = CommandCounter()
    monitoring.register(counter)
    if marks:
        threading.Thread(target=_watch_marks, args=(counter, out, marks), daemon=True).start()

    def dump() -> None:
        with open(out, "w") as fh:
            json.dump(counter.snapshot(), fh)

    atexit.register(dump)
    snapshots = itertools.count(1)

    def snapshot(signum: int, frame: object) -> None:
        # written aside and renamed: the benchmark must never read a half-written snapshot
        path = f"{out}.{next(snapshots)}"
        with open(f"{path}.tmp", "w") as fh:
            json.dump(counter.snapshot(), fh)
        os.replace(f"{path}.tmp", path)

    signal.signal(signal.SIGUSR1, snapshot)
    return counter


def _watch_marks(counter: CommandCounter, out: str, marks: str) -> None:
    for k in itertools.count(1):
        while not os.path.exists(os.path.join(marks, f"mark.{k}")):
            time.sleep(0.01)
        with open(f"{out}.{k}.tmp", "w") as fh:
            json.dump(counter.snapshot(), fh)
        os.replace(f"{out}.{k}.tmp", f"{out}.{k}")


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    install(out)
    from hyperdist.cli import main as cli

    sys.argv = ["hyperdist", *args]
    cli()


if __name__ == "__main__":
    main()
