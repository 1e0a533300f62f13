"""What the embedded SecantusDB charges per command, in server CPU: the costs behind distributed.py.

    python benchmarks/server_costs.py [--reps 150] [--only reads writes claims reports in-lists] [--out FILE]

Each section starts a fresh server (hyperdist.server.embedded, as `hyperdist` starts it) and reads the
server's CPU seconds from /proc around `--reps` calls of one command (CPU ticks are 10 ms, so
150 calls resolve ~0.07 ms); latency is the client's wall time per call.

1. The worker's candidate read, `find({exp_key, state: NEW}).sort(tid).limit(L)` with the
   projection the store uses, against how many NEW trials it matches (500 finished trials beside).
2. An `update` by `_id` that modifies one document, and a ping, as the writes the server has
   served grow, with pymongo's retryable writes on (its default) and off (the store's): with
   them on, SecantusDB's bookkeeping of retryable writes makes the same command dearer run after run.
3. A claim's compare-and-set on 8 picks as 8 `update` statements (how the store wrote it up to
   3deabf4) against one statement over `_id` in the 8 (the store now): SecantusDB commits each
   statement on its own.
4. The reports of 8 trials of one lease as 8 statements (up to 3325d1e) against the one pipeline
   statement the store sends now (`testing.finish_together`).
5. Reads by `_id` `$in` (SecantusDB matches the list in time that grows with its square): the
   coordinator's read of the finished trials among its open ones, by `_id` (up to 25b1d48) and by
   state and tid range (now), and a claim's resolving read, as the list grows.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from pymongo import MongoClient, UpdateOne

from distributed import SPACE
from envinfo import describe
from hyperdist.server.embedded import LocalServer, start_server, stop_server
from hyperdist.space.compiled import compile_space
from hyperdist.store import Report, Store
from hyperdist.store import testing as raw
from hyperdist.store.document import TRIAL_FIELDS

PROJECTION = None  # what a worker's claim reads of each candidate: the whole document


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, fn, reps: int) -> tuple[float, float]:
    """(server CPU ms, client latency ms) per call."""
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    for _ in range(reps):
        fn()
    return 1000 * (cpu_seconds(pid) - c0) / reps, 1000 * (time.perf_counter() - t0) / reps


@contextlib.contextmanager
def fresh_server() -> Iterator[LocalServer]:
    """A new SecantusDB in a temporary directory, stopped afterwards: the server's per-command cost
    grows with the writes it has served, so every measurement starts from a fresh one."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "server")
        try:
            yield server
        finally:
            stop_server(Path(tmp) / "server")


def candidate_reads(reps: int) -> list[str]:
    lines = ["| NEW trials matched | limit 32 (the worker's read): server CPU ms | latency ms | limit 8: server CPU ms | latency ms |",
             "|---|---|---|---|---|"]
    with fresh_server() as server:
        store = Store(server.url, db="costs")
        space = compile_space(SPACE)
        params = [space.to_assignment(r) for r in space.sample(np.random.default_rng(0), 600)]
        store.insert_trials("e", list(enumerate(params[:500])), space.hash)
        trials = raw.trials(store)
        trials.update_many({}, {"$set": {"state": "DONE", "result": {"loss": 1.0, "status": "ok"}}})
        next_tid = 500
        query = {"exp_key": "e", "state": "NEW"}
        for new in (4, 8, 16, 32, 64):
            have = trials.count_documents(query)
            store.insert_trials("e", [(next_tid + i, params[(next_tid + i) % 600]) for i in range(new - have)],
                                space.hash)
            next_tid += new - have
            row = [str(new)]
            for limit in (32, 8):
                cpu, lat = measure(server.pid, lambda: list(trials.find(query, PROJECTION).sort("tid", 1).limit(limit)), reps)
                row += [f"{cpu:.2f}", f"{lat:.2f}"]
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
        store.close()
    return lines


def writes_served(reps: int) -> list[str]:
    lines = ["| retryable writes | updates served before | update by _id, modifies: server CPU ms | latency ms | "
             "ping: server CPU ms |", "|---|---|---|---|---|"]
    for retry_writes in (True, False):  # pymongo's default, and the store's (store._write_options)
        with fresh_server() as server:
            client = MongoClient(server.url, retryWrites=retry_writes)
            trials = client.costs.trials
            trials.insert_many([{"_id": i, "h": 0} for i in range(1000)])
            served = [0]

            def update() -> None:
                served[0] += 1
                trials.update_one({"_id": served[0] % 1000}, {"$set": {"h": served[0]}})

            for _ in range(4):
                before = served[0]
                cpu, lat = measure(server.pid, update, reps)
                ping, _ = measure(server.pid, lambda: client.admin.command("ping"), reps)
                lines.append(f"| {'on' if retry_writes else 'off'} | {before} | {cpu:.2f} | {lat:.2f} | {ping:.2f} |")
                print(lines[-1], flush=True)
                for _ in range(1500):
                    update()
            client.close()
    return lines


def one_against_eight(reps: int, header: str, state: str, ways: dict) -> list[str]:
    """Server CPU of writing 8 trials' change as 8 statements and as 1: `ways` maps a row name to
    a function of (trials collection, the 8 ids), each call on a fresh batch of trials in `state`."""
    lines = [f"| {header} | server CPU ms | latency ms |", "|---|---|---|"]
    with fresh_server() as server:
        store = Store(server.url, db="costs")
        space = compile_space(SPACE)
        params = [space.to_assignment(r) for r in space.sample(np.random.default_rng(0), 600)]
        ids = store.insert_trials("e", [(i, params[i % 600]) for i in range(8 * reps * 2 * len(ways))], space.hash)
        raw.trials(store).update_many({}, {"$set": {"state": state, "lease_token": "t"}})
        batches = iter(range(0, len(ids), 8))

        def once(write: Callable) -> None:
            i = next(batches)
            write(raw.trials(store), ids[i:i + 8])

        for name, write in list(ways.items()) * 2:
            cpu, lat = measure(server.pid, lambda: once(write), reps)
            lines.append(f"| {name} | {cpu:.2f} | {lat:.2f} |")
            print(lines[-1], flush=True)
        store.close()
    return lines


CLAIM = {"$set": {"state": "RUNNING", "lease_token": "u"}, "$inc": {"attempts": 1}}


def _reports(ids: list) -> list[Report]:
    return [Report(x, "t", "DONE", {"loss": 0.1 * k, "status": "ok"}) for k, x in enumerate(ids)]


CLAIM_WAYS = {
    "8 statements": lambda trials, ids: trials.bulk_write(
        [UpdateOne({"_id": x, "state": "NEW"}, CLAIM) for x in ids], ordered=False),
    "1 statement, _id $in": lambda trials, ids: trials.update_many({"_id": {"$in": ids}, "state": "NEW"}, CLAIM),
}
REPORT_WAYS = {
    "8 statements": lambda trials, ids: trials.bulk_write(
        [UpdateOne({"_id": r.trial_id, "state": "RUNNING", "lease_token": "t"},
                   raw.finish_update(r, token="t")) for r in _reports(ids)], ordered=False),
    "1 pipeline statement": lambda trials, ids: trials.update_many(*raw.finish_together(_reports(ids))),
}


def in_lists(reps: int) -> list[str]:
    """The coordinator's read of the finished trials among its open ones, by `_id` `$in` (up to
    25b1d48) and by state and tid range (what `Store.finished_among` reads given 16 or more close
    tids), and a claim's
    resolving read by `_id` `$in` alone, as the list grows; a quarter of the open trials finished."""
    lines = ["| open trials | finished read, _id $in: server CPU ms | latency ms | by state and tid range: server CPU ms "
             "| latency ms | _id $in alone (a resolving read): server CPU ms |", "|---|---|---|---|---|---|"]
    with fresh_server() as server:
        store = Store(server.url, db="costs")
        space = compile_space(SPACE)
        params = [space.to_assignment(r) for r in space.sample(np.random.default_rng(0), 600)]
        ids = store.insert_trials("e", list(enumerate(params[:580])), space.hash)
        trials = raw.trials(store)
        trials.update_many({"tid": {"$lt": 500}}, {"$set": {"state": "DONE", "result": {"loss": 1.0, "status": "ok"}}})
        for n in (6, 20, 40, 80):
            opened = list(range(500, 500 + n))
            trials.update_many({"tid": {"$gte": 500}}, {"$set": {"state": "NEW", "result": None}})
            trials.update_many({"tid": {"$gte": 500, "$lt": 500 + n // 4}},
                               {"$set": {"state": "DONE", "result": {"loss": 1.0, "status": "ok"}}})
            keys = [ids[t] for t in opened]
            by_id = measure(server.pid, lambda: store.finished_among("e", keys), reps)
            span = {"$gte": opened[0], "$lte": opened[-1]}  # the store's two range reads, whatever the list's size
            by_range = measure(server.pid, lambda: [list(trials.find({"exp_key": "e", "state": state, "tid": span},
                                                                     dict(TRIAL_FIELDS, batch=1)))
                                                    for state in ("DONE", "ERROR")], reps)
            alone, _ = measure(server.pid, lambda: list(trials.find({"_id": {"$in": keys}}, {"state": 1, "lease_token": 1})),
                               reps)
            lines.append(f"| {n} | {by_id[0]:.2f} | {by_id[1]:.2f} | {by_range[0]:.2f} | {by_range[1]:.2f} | {alone:.2f} |")
            print(lines[-1], flush=True)
        store.close()
    return lines


SECTIONS = {
    "reads": ("Candidate read (500 finished trials beside the NEW ones):", candidate_reads),
    "writes": ("One `update` by `_id` as the server's served writes grow (1000 documents, each updated in turn):",
               writes_served),
    "claims": ("A claim's write, 8 picks (each row a fresh batch of NEW trials):",
               lambda reps: one_against_eight(reps, "claim of 8 picks", "NEW", CLAIM_WAYS)),
    "reports": ("Eight reports under one lease (each row a fresh batch of RUNNING trials):",
                lambda reps: one_against_eight(reps, "reports of 8 trials, one lease", "RUNNING", REPORT_WAYS)),
    "in-lists": ("Reads of trials by `_id` `$in` against the coordinator's range reads (500 finished trials beside):",
                 in_lists),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=150)
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    lines = [f"`python benchmarks/server_costs.py {' '.join(sys.argv[1:])}`", "",
             f"Server CPU per call over {args.reps} calls on a fresh server per section; latency = client wall time.", ""]
    for name in args.only:
        title, section = SECTIONS[name]
        lines += [title, "", *section(args.reps), ""]
    lines += [f"1-minute load average before {load0:.2f}, after {os.getloadavg()[0]:.2f} (nproc {os.cpu_count()}).", "",
              describe()]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
