"""Reading an experiment from the command line: failed trials with their tracebacks, choices shown by
their option, a coordinator that went away, `best`'s exit code, `delete`, and the key given either as
an argument or as --exp. Every test drives the real CLI against a real wire server."""
from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from hyperdist import hp
from hyperdist.cli import main
from hyperdist.objective.result import exception_error
from hyperdist.space.compiled import compile_space
from hyperdist.store import DONE, ERROR, Store
from hyperdist.store import testing as raw

SPACE = {
    "model": hp.choice("model", ["svm", "forest", "knn"]),
    "x": hp.uniform("x", -1, 1),
    "net": hp.choice("net", [{"type": "small"}, {"type": "big", "units": hp.quniform("units", 8, 64, 8)}]),
}


def _broken(params: dict) -> None:
    raise KeyError("missing column target" if params else "no params")


def _trace(params: dict) -> dict:
    try:
        _broken(params)
    except KeyError as exc:
        return exception_error(exc)
    raise AssertionError("unreachable")


def _fill(store: Store, exp: str, n: int, failing: set[int]) -> None:
    space = compile_space(SPACE)
    store.create_experiment(exp, space=space.to_json(), space_hash=space.hash, objective="m:f",
                            algo={"name": "rand"}, max_evals=n, seed=0)
    rows = space.sample(np.random.default_rng(3), n)
    store.insert_trials(exp, [(i, space.to_assignment(r)) for i, r in enumerate(rows)])
    for i in range(n):
        doc = store.claim(f"host-{i % 2}:pid", 30, exp)
        if doc["tid"] in failing:
            store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail"}, _trace(doc["params"]))
        else:
            store.report(doc["_id"], doc["lease_token"], DONE, {"loss": doc["params"]["x"] ** 2, "status": "ok"})


@pytest.fixture
def failing(store: Store) -> Store:
    """12 trials, 4 of which raised KeyError (with a traceback), 8 finished ok."""
    _fill(store, "mixed", 12, {1, 4, 7, 10})
    return store


def _run(store: Store, *args: str, code: int = 0, input: str | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--mongo", store.url, "--db", store.db_name], input=input)
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


def test_trials_lists_failures_with_their_message(failing):
    out = _run(failing, "trials", "mixed", "--state", "error")
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split()[:4] == ["tid", "state", "loss", "params"]
    rows = lines[1:]
    assert [int(r.split()[0]) for r in rows] == [1, 4, 7, 10]
    assert all("ERROR" in r and "KeyError" in r and "missing column" in r for r in rows)
    assert all("host-" in r for r in rows)
    everything = _run(failing, "trials", "mixed")
    assert len([ln for ln in everything.splitlines() if ln.strip()]) == 13
    assert "model=svm" in everything or "model=forest" in everything or "model=knn" in everything
    assert "model=0" not in everything and "model=1 " not in everything
    last = _run(failing, "trials", "mixed", "--limit", "3")
    assert [int(r.split()[0]) for r in last.splitlines()[1:] if r.strip()] == [9, 10, 11]


def test_show_prints_the_traceback_params_and_configuration(failing):
    doc = next(d for d in failing.history("mixed") if d["tid"] == 4)
    out = _run(failing, "show", "mixed", "4")
    assert "Traceback (most recent call last)" in out and "_broken" in out and "KeyError" in out
    choice = ["svm", "forest", "knn"][doc["params"]["model"]]
    assert f"model = {choice!r} (option {doc['params']['model']})" in out
    assert "config" in out and json.dumps(choice) in out     # the evaluated configuration
    assert f"worker: {doc['owner']}" in out and "attempts: 1" in out
    missing = _run(failing, "show", "mixed", "99", code=2)
    assert "has no trial 99" in missing and "up to 11, with gaps" in missing and "hyperdist trials mixed" in missing


def test_show_says_which_worker_lost_an_earlier_attempt(store):
    """A worker that dies mid-trial leaves only an expired lease; the trial goes back to the queue
    and `show` says who lost it, so attempts: 2 is not a mystery."""
    import datetime as dt

    _fill(store, "lossy", 1, set())  # one trial, finished by host-0
    raw.trials(store).update_one({"exp_key": "lossy"}, {"$set": {"state": "NEW", "result": None, "finished": None}})
    doc = store.claim("host-9:4242", 30, "lossy")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60)
    assert len(store.reap_expired("lossy", 3, now=later)) == 1
    doc = store.claim("host-1:77", 30, "lossy")
    store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 1.0, "status": "ok"})
    out = _run(store, "show", "lossy", "0")
    assert "attempt 2 was lost: worker host-9:4242 stopped renewing its lease" in out
    assert "worker: host-1:77" in out and "attempts: 3" in out


def test_reads_print_stored_text_without_terminal_controls_and_name_a_missing_space(failing):
    raw.trials(failing).update_one({"exp_key": "mixed", "tid": 4},
                               {"$set": {"error.message": "\x1b]0;owned\x07\x1b]52;c;cHduZWQ=\x07 cleared"}})
    for args in (("trials", "mixed", "--state", "error"), ("show", "mixed", "4")):
        out = _run(failing, *args)
        assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned" in out, args
    raw.experiments(failing).update_one({"_id": "mixed"}, {"$unset": {"space": 1}})
    for args in (("status", "mixed"), ("trials", "mixed"), ("show", "mixed", "4"), ("export", "mixed"), ("best", "mixed")):
        assert "not a hyperdist space document: no space at all" in _run(failing, *args, code=2), args


def test_show_of_a_trial_stored_with_an_unknown_state_names_it(failing):
    raw.trials(failing).update_one({"exp_key": "mixed", "tid": 3}, {"$set": {"state": "HACKED"}})
    out = _run(failing, "show", "mixed", "3", code=2)
    assert "trial 3 of 'mixed' is stored with the state 'HACKED'" in out and "'DONE'" in out


def test_status_shows_error_counts_the_most_frequent_error_and_readable_best(failing):
    out = _run(failing, "status", "mixed")
    assert "errors: 4" in out and "4x KeyError" in out and "missing column" in out
    best_line = next(line for line in out.splitlines() if line.startswith("best:"))
    assert any(f'"model": "{m}"' in best_line for m in ("svm", "forest", "knn")), best_line


def test_exports_show_choice_values_and_keep_the_index(failing):
    history = {d["tid"]: d for d in failing.history("mixed")}
    text = _run(failing, "export", "mixed", "--format", "csv")
    assert "\r" not in text  # Unix line ends, as every other output (the csv module's default is CRLF)
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        params = history[int(row["tid"])]["params"]
        assert row["param.model"] == ["svm", "forest", "knn"][params["model"]]
        assert int(row["param.model_index"]) == params["model"]
        assert row["param.net"] == ["small", "big"][params["net"]]
    records = json.loads(_run(failing, "export", "mixed", "--format", "json"))
    assert {r["param.model"] for r in records} <= {"svm", "forest", "knn"}
    lines = [json.loads(line) for line in _run(failing, "export", "mixed", "--format", "jsonl").splitlines()]
    assert all(isinstance(r["param.model_index"], int) for r in lines)


def test_json_export_is_valid_json_with_nan_as_null(store):
    _fill(store, "nan", 3, set())
    raw.trials(store).update_one({"exp_key": "nan", "tid": 1}, {"$set": {"result.score": float("nan")}})
    text = _run(store, "export", "nan", "--format", "json")
    rows = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in export"))
    assert rows[1]["result.score"] is None
    for line in _run(store, "export", "nan", "--format", "jsonl").splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in export"))


def test_a_lapsed_coordinator_lease_shows_as_stopped(store):
    _fill(store, "gone", 4, set())
    store.acquire_coordinator("gone", "deadhost:4242", lease_seconds=0.01)
    time.sleep(0.1)
    assert store.get_experiment("gone")["state"] == "running"
    status = _run(store, "status", "gone")
    assert "state=stopped" in status and "coordinator gone since" in status and "state=running" not in status
    listed = _run(store, "list")
    row = next(line for line in listed.splitlines() if line.startswith("gone"))
    assert "stopped" in row and "running" not in row
    store.acquire_coordinator("gone", "alive:1", lease_seconds=60)
    assert "state=running" in _run(store, "status", "gone")


def test_a_coordinator_killed_on_this_machine_shows_as_stopped_before_its_lease_runs_out(store):
    """Found by a new user: after kill -9 of the search, `status` said running, with an ETA, for the
    rest of the lease (a resume at the same moment already knew the process was gone)."""
    import os
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fill(store, "killed", 4, set())
    store.acquire_coordinator("killed", f"coordinator:{socket.gethostname()}:{dead.pid}:abc123", lease_seconds=60)
    status = _run(store, "status", "killed")
    assert "state=stopped (its coordinator's process on this machine is gone)" in status, status
    assert "ETA" not in status and "(its lease runs out in " in status
    _fill(store, "alive", 4, set())  # a live process (this one) keeps its experiment running
    store.acquire_coordinator("alive", f"coordinator:{socket.gethostname()}:{os.getpid()}:abc123", lease_seconds=60)
    assert "state=running" in _run(store, "status", "alive")


def test_best_exits_non_zero_when_no_trial_succeeded(store):
    _fill(store, "allbad", 3, {0, 1, 2})
    result = CliRunner().invoke(main, ["best", "allbad", "--mongo", store.url, "--db", store.db_name])
    assert result.exit_code == 1 and "no trial of 'allbad' finished with status ok" in result.output
    _fill(store, "somegood", 3, {0})
    best = json.loads(_run(store, "best", "somegood"))
    assert best["tid"] in (1, 2) and best["config"]["model"] in ("svm", "forest", "knn")


def test_delete_asks_and_removes_experiment_trials_and_snapshots(failing):
    failing.append_snapshot("mixed", "me", [{"seq": 0, "tids": [0, 1]}])
    _fill(failing, "keep", 2, set())
    out = _run(failing, "delete", "mixed", input="n\n", code=1)
    assert "12 trials" in out and failing.get_experiment("mixed")
    _run(failing, "delete", "mixed", input="y\n")
    assert [e["_id"] for e in failing.list_experiments()] == ["keep"]
    assert failing.history("mixed") == [] and failing.read_snapshot("mixed") == []
    assert len(failing.history("keep")) == 2
    _run(failing, "delete", "keep", "--yes")
    assert failing.list_experiments() == []
    _run(failing, "delete", "keep", "--yes", code=2)


def test_delete_refuses_an_experiment_with_a_live_coordinator(store):
    _fill(store, "busy", 2, set())
    store.acquire_coordinator("busy", "alive:1", lease_seconds=60)
    out = _run(store, "delete", "busy", "--yes", code=2)
    assert "coordinator" in out
    assert store.get_experiment("busy")


@pytest.mark.parametrize("command", [["status"], ["best"], ["export"], ["trials"], ["show", "0"]])
def test_the_key_is_accepted_as_argument_or_as_exp(failing, command):
    positional = _run(failing, command[0], "mixed", *command[1:])
    assert _run(failing, command[0], "--exp", "mixed", *command[1:]) == positional
    _run(failing, command[0], "mixed", "--exp", "other", *command[1:], code=2)


def test_every_command_and_option_has_help():
    def walk(group, path):
        for name, cmd in group.commands.items():
            yield [*path, name], cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, [*path, name])

    missing = []
    for path, cmd in walk(main, []):
        if not (cmd.help or "").strip():
            missing.append(" ".join(path))
        for param in cmd.params:
            if param.param_type_name == "option" and not (param.help or "").strip() and "--help" not in param.opts:
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_errors_that_differ_only_in_numbers_count_as_one(store):
    _fill(store, "numbers", 10, set(range(10)))
    for tid, x in enumerate([0.53, 0.71, 0.12, 0.53, 9.0, 0.8, 0.1, 0.2, 0.3, 0.4]):
        raw.trials(store).update_one({"exp_key": "numbers", "tid": tid},
                                     {"$set": {"error.type": "ValueError", "error.message": f"bad x={x:.2f}"}})
    raw.trials(store).update_one({"exp_key": "numbers", "tid": 9}, {"$set": {"error.type": "KeyError"}})
    top = store.top_errors("numbers")
    assert top[0][0] == 9 and top[0][1].startswith("ValueError: bad x=0.53 (and 7 like it with other numbers)")
    assert top[1] == (1, "KeyError: bad x=0.40")


def test_hints_quote_the_key_a_negative_tid_is_one_line_and_pruned_trials_are_selectable(store):
    """A key with a space: every hint is a command a shell runs as printed; `show EXP -1` is one
    error line, not click's "no such option"; `--state pruned` selects done trials a pruner stopped."""
    _fill(store, "my exp", 6, {1})
    pruned = next(d for d in store.history("my exp") if d["tid"] == 3)
    raw.trials(store).update_one({"_id": pruned["_id"]}, {"$set": {"result": {"status": "pruned", "loss": 0.5}}})
    status = _run(store, "status", "my exp")
    assert "[hyperdist trials 'my exp' --state error; hyperdist show 'my exp' TID]" in status
    result = CliRunner().invoke(main, ["show", "my exp", "-1", "--mongo", store.url, "--db", store.db_name])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: TID must be a trial id") and "(got '-1')" in result.output
    assert "`hyperdist show 'my exp' 7`" in result.output
    assert "`hyperdist trials 'my exp'` lists them" in _run(store, "show", "my exp", "99", code=2)
    rows = lambda out: [int(r.split()[0]) for r in out.splitlines()[1:] if r.strip()]  # noqa: E731
    assert rows(_run(store, "trials", "my exp", "--state", "pruned")) == [3]
    assert rows(_run(store, "trials", "my exp", "--state", "done")) == [0, 2, 4, 5]
    assert rows(_run(store, "trials", "my exp", "--state", "error")) == [1]
