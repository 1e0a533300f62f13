"""The command line: help for every command, and one clear error (no traceback) for each bad input."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from hyperdist.cli import main
from hyperdist.store import Store
from harness import TESTS, worker_env

COMMANDS = [[], ["search"], ["worker"], ["status"], ["best"], ["list"], ["export"], ["demo"], ["server"],
            ["server", "start"], ["server", "stop"], ["server", "status"], ["stop"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help(cmd):
    result = CliRunner().invoke(main, [*cmd, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def _hd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", *args], env=worker_env(), capture_output=True, text=True,
                          timeout=timeout)


def _one_clear_error(run: subprocess.CompletedProcess, *fragments: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


SPACE = f"{TESTS / 'objectives.py'}:space"


@pytest.mark.parametrize("objective, fragments", [
    ("no_such_module_xyz:fn", ["cannot import module 'no_such_module_xyz'"]),
    (f"{TESTS / 'objectives.py'}:not_callable", ["not a callable"]),
    (f"{TESTS / 'objectives.py'}:missing", ["has no attribute 'missing'"]),
    ("not-a-reference", ["is not a reference"]),
])
def test_bad_objective_is_refused_before_anything_is_written(mongo_url, db_name, objective, fragments):
    run = _hd("search", objective, "--space", SPACE, "--max-evals", "5", "--mongo", mongo_url, "--db", db_name)
    _one_clear_error(run, *fragments)
    store = Store(mongo_url, db=db_name)
    assert store.list_experiments() == []
    store.close()


def test_malformed_space_file_and_bad_max_evals(tmp_path, mongo_url, db_name):
    bad = tmp_path / "space.json"
    bad.write_text("{not json")
    objective = f"{TESTS / 'objectives.py'}:quadratic"
    _one_clear_error(_hd("search", objective, "--space", str(bad), "--max-evals", "5", "--mongo", mongo_url,
                         "--db", db_name), "not valid JSON")
    bad.write_text('{"format": "hyperdist.space/1", "root": {"x": {"$hp": "uniform", "label": "x", "args": [1, 0]}}}')
    _one_clear_error(_hd("search", objective, "--space", str(bad), "--max-evals", "5", "--mongo", mongo_url,
                         "--db", db_name), "low=1", "high=0")
    for value in ("0", "-3"):
        _one_clear_error(_hd("search", objective, "--space", SPACE, "--max-evals", value, "--mongo", mongo_url),
                         value)


@pytest.mark.parametrize("slot", ["4/4", "1", "-1/4", "a/b"])
def test_a_bad_worker_slot_is_refused(slot):
    result = CliRunner().invoke(main, ["worker", "--allow", "m", "--slot", slot, "--mongo", "mongodb://127.0.0.1:1"])
    assert result.exit_code == 2 and f"{slot!r} is not I/K with 0 <= I < K" in result.output, result.output


def test_unknown_experiment_and_unreachable_server(mongo_url, db_name):
    _one_clear_error(_hd("status", "nope", "--mongo", mongo_url, "--db", db_name), "no experiment 'nope'")
    t = time.monotonic()
    run = _hd("list", "--mongo", "mongodb://bob:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=500")
    _one_clear_error(run, "127.0.0.1:1")
    assert "hunter2" not in run.stderr + run.stdout and time.monotonic() - t < 30


def test_worker_refuses_objectives_it_was_not_allowed(mongo_url, db_name):
    _one_clear_error(_hd("worker", "--mongo", mongo_url, "--db", db_name), "--allow")
    from hyperdist import tpe
    from hyperdist.distributed.coordinator import Coordinator, StopRules
    from hyperdist.space.compiled import compile_space
    import objectives

    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "guarded", compile_space(objectives.space), tpe.suggest, StopRules(3),
                        objective=f"{TESTS / 'objectives.py'}:quadratic")
    coord.start()
    coord.tick()
    run = _hd("worker", "--mongo", mongo_url, "--db", db_name, "--exp", "guarded", "--allow", "some_other_module",
              "--idle-timeout", "2")
    assert run.returncode == 1 and "not allowed on this worker" in run.stderr and "Traceback" not in run.stderr
    assert store.counts("guarded")["RUNNING"] == 0 and store.counts("guarded")["DONE"] == 0
    store.close()


def test_a_second_demo_starts_beside_the_first_with_the_exp_its_message_names(mongo_url, db_name):
    """Found by a new user: the demo's 'already exists' message said '--exp NEW_KEY', an option the
    demo did not have."""
    url = f"{mongo_url}/{db_name}"
    first = _hd("demo", "--workers", "1", "--max-evals", "2", "--mongo", url, timeout=180)
    assert first.returncode == 0, first.stderr
    again = _hd("demo", "--workers", "1", "--max-evals", "2", "--mongo", url, timeout=180)
    _one_clear_error(again, "experiment 'demo-digits' already exists", "--exp NEW_KEY")
    other = _hd("demo", "--workers", "1", "--max-evals", "2", "--mongo", url, "--exp", "demo-2", "--seed", "5",
                timeout=180)
    assert other.returncode == 0, other.stderr
    store = Store(mongo_url, db=db_name)
    assert {e["_id"]: e["seed"] for e in store.list_experiments()} == {"demo-digits": 0, "demo-2": 5}
    store.close()
