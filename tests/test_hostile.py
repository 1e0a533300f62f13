"""Hostile or broken data against real worker processes on a real MongoDB-wire server: whoever can
write the database may plant experiments and trials, and objectives may return or do anything. No
code runs that the worker's operator did not allow, and nothing crashes a worker or a coordinator."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hostile_objectives
from hyperdist import rand
from hyperdist.cli import main
from hyperdist.distributed.coordinator import Coordinator, StopRules
from hyperdist.errors import ObjectiveMismatch
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import TESTS, wait_until, worker_env

pytestmark = pytest.mark.slow
HOSTILE = TESTS / "hostile_objectives.py"
HYPERDIST = str(Path(sys.executable).parent / "hyperdist")  # the installed command, as a user runs it


def _worker(url: str, db: str, *args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", "worker", "--mongo", url, "--db", db,
                           "--idle-timeout", "3", *args], env=worker_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _plant(store: Store, key: str, objective: str, space: dict, params: list[dict], **fields) -> None:
    """An experiment and NEW trials written straight into the database, as an attacker would."""
    store.create_experiment(key, space=space, space_hash="h-" + key, objective=objective, algo={}, max_evals=10,
                            seed=0)
    if fields:
        raw.database(store)["experiments"].update_one({"_id": key}, {"$set": fields})
    store.insert_trials(key, list(enumerate(params)), "h-" + key)


def _shell_space(command: str) -> dict:
    """A one-option choice whose only option is a shell command: what `os.system` would be handed."""
    return compile_space({"cmd": __import__("hyperdist").hp.choice("cmd", [command])}).to_json()


@pytest.mark.parametrize("allow", ["{dir}/hostile_objectives.py", "{dir}/hostile_objectives.py:quad",
                                   "{dir}", "hostile_objectives"])
@pytest.mark.parametrize("objective", ["{dir}/hostile_objectives.py:system", "hostile_objectives:system",
                                       "{dir}/hostile_objectives.py:os.system"])
def test_a_planted_reference_cannot_reach_a_function_the_allowed_module_imported(mongo_url, store, tmp_path,
                                                                                 allow, objective):
    pwned = tmp_path / "pwned"
    objective = objective.format(dir=TESTS)
    _plant(store, "evil", objective, _shell_space(f"touch {pwned}"), [{"cmd": 0}])
    run = _worker(mongo_url, store.db_name, "--exp", "evil", "--allow", allow.format(dir=TESTS))
    assert not pwned.exists(), run.stderr
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert objective in run.stderr  # refused before claiming: the worker's operator reads why
    if ":os.system" not in objective:  # refused by the allow list (a dotted path is refused as malformed)
        assert "allow" in run.stderr
    [trial] = store.history("evil")
    assert trial["state"] == "NEW"  # no trial of the search was spent on a worker that cannot run it


def test_an_experiment_changed_under_a_running_worker_hands_the_trial_back_and_stops(mongo_url, store, tmp_path):
    """The check before claiming saw an allowed objective; the attacker then swaps the experiment's
    objective and space. The trial that meets the swap goes back to the queue unrun (no trial fails
    for what a worker may run), the refusal naming the reference and the allow list is written on the
    experiment for the search to print, and the worker stops (it has nothing else to serve)."""
    from hyperdist.distributed.worker import Worker, WorkerConfig

    space = compile_space(hostile_objectives.space)
    store.create_experiment("swap", space=space.to_json(), space_hash=space.hash, objective=f"{HOSTILE}:quad",
                            algo={}, max_evals=10, seed=0)
    worker = Worker(store, WorkerConfig(allow=[str(HOSTILE)], exp_key="swap"))
    assert worker._cannot_serve() == ""
    evil = _shell_space(f"touch {tmp_path / 'pwned'}")
    raw.database(store)["experiments"].update_one({"_id": "swap"}, {"$set": {"objective": f"{HOSTILE}:system", "space": evil,
                                                                    "space_hash": "h-evil"}})
    store.insert_trials("swap", [(0, {"cmd": 0})], "h-evil")
    doc = store.claim(worker.owner, 30, "swap")
    assert worker._run_trial(doc, []) is None and worker.stats.exit_code == 1
    [trial] = store.history("swap")
    assert trial["state"] == "NEW" and trial["owner"] is None
    [refusal] = store.get_experiment("swap")["refusals"]
    assert f"{HOSTILE}:system" in refusal["reason"] and f"(allowed: {HOSTILE})" in refusal["reason"]
    assert refusal["worker"] == worker.owner
    assert not (tmp_path / "pwned").exists()


def test_an_exact_entry_allows_that_function_and_nothing_else(store):
    from hyperdist.errors import ObjectiveNotAllowed
    from hyperdist.objective.reference import AllowList, load_objective

    allow = AllowList([f"{HOSTILE}:quad"])
    assert load_objective(f"{HOSTILE}:quad", allow)({}) == 0.25
    for name in ("misbehave", "_private", "system"):
        with pytest.raises(ObjectiveNotAllowed):
            load_objective(f"{HOSTILE}:{name}", allow)
    with pytest.raises(ObjectiveNotAllowed, match="not allowed"):  # a module entry never reaches _names
        load_objective(f"{HOSTILE}:_private", AllowList([str(HOSTILE)]))
    assert load_objective(f"{HOSTILE}:misbehave", AllowList([str(HOSTILE)])) is not None


def test_a_shared_worker_skips_what_it_may_not_run_and_serves_the_rest(mongo_url, store, tmp_path):
    pwned = tmp_path / "pwned"
    _plant(store, "evil", f"{HOSTILE}:system", _shell_space(f"touch {pwned}"), [{"cmd": 0}])
    _plant(store, "nospace", f"{HOSTILE}:quad", {"$dict": 5}, [{"kind": 0}])
    space = compile_space(hostile_objectives.space).to_json()
    _plant(store, "good", f"{HOSTILE}:quad", space, [{"kind": 0}, {"kind": 1}, {"kind": 2}])
    run = _worker(mongo_url, store.db_name, "--allow", str(HOSTILE))  # no --exp: serves every experiment
    assert run.returncode == 0, run.stderr
    assert not pwned.exists()
    assert [d["state"] for d in store.history("good")] == ["DONE"] * 3
    assert [d["state"] for d in store.history("evil")] == ["NEW"]  # left for workers that may run it
    assert run.stderr.count("skipping experiment 'evil'") == 1 and "skipping experiment 'nospace'" in run.stderr


def test_results_no_store_can_hold_and_objectives_that_exit_fail_only_their_trial(mongo_url, store):
    space = compile_space(hostile_objectives.space)
    n = len(hostile_objectives.space["kind"].options)
    _plant(store, "bad", f"{HOSTILE}:misbehave", space.to_json(), [{"kind": i} for i in range(n)])
    raw.database(store)["experiments"].update_one({"_id": "bad"}, {"$set": {"space_hash": space.hash}})
    run = _worker(mongo_url, store.db_name, "--exp", "bad", "--allow", str(HOSTILE),
                  "--max-consecutive-failures", "100")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    trials = {space.display("kind", d["params"]["kind"]): d for d in store.history("bad")}
    assert trials["ok"]["state"] == "DONE"
    messages = {k: (d["error"]["type"], d["error"]["message"]) for k, d in trials.items() if k != "ok"}
    assert all(d["state"] == "ERROR" for k, d in trials.items() if k != "ok"), messages
    assert messages["big_int"][0] == "UnstorableResult" and "result.extra.n" in messages["big_int"][1]
    assert "cycle" in messages["cycle"][1] and "nested more than" in messages["deep"][1]
    assert "result.note" in messages["surrogate"][1] and "'$where'" in messages["key"][1]
    assert messages["exit"] == ("ObjectiveExited", "objective called sys.exit(3)")
    assert messages["exit_none"] == ("ObjectiveExited", "objective called sys.exit(None)")
    assert messages["interrupt"][0] == "ObjectiveExited" and "KeyboardInterrupt" in messages["interrupt"][1]
    assert messages["bad_str"][0] == "_Unprintable" and "unavailable" in messages["bad_str"][1]
    # the experiment stays readable
    from click.testing import CliRunner

    for args in (["status", "bad"], ["export", "bad", "--format", "jsonl"]):
        res = CliRunner().invoke(main, [*args, "--mongo", mongo_url, "--db", store.db_name])
        assert res.exit_code == 0, res.output


def test_crafted_trial_documents_fail_their_trial_not_the_worker(mongo_url, store):
    space = compile_space(hostile_objectives.space)
    _plant(store, "junk", f"{HOSTILE}:quad", space.to_json(), [{"kind": 0}] * 5)
    raw.database(store)["experiments"].update_one({"_id": "junk"}, {"$set": {"space_hash": space.hash}})
    trials = raw.database(store)["trials"]
    trials.update_one({"exp_key": "junk", "tid": 1}, {"$set": {"params": "kind=0"}})
    trials.update_one({"exp_key": "junk", "tid": 2}, {"$set": {"params": {"kind": 99}}})
    trials.update_one({"exp_key": "junk", "tid": 3}, {"$unset": {"tid": ""}})
    trials.insert_one({"exp_key": "junk", "tid": 7, "state": "WEIRD", "params": {}})
    trials.insert_one({"exp_key": {"$gt": ""}, "tid": 8, "state": "NEW", "params": {}, "attempts": 0})
    trials.insert_one({"exp_key": "other", "tid": 9, "state": "NEW", "params": {}, "attempts": "many"})
    run = _worker(mongo_url, store.db_name, "--exp", "junk", "--allow", str(HOSTILE))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    by_state = {}
    for d in trials.find({"exp_key": "junk"}):
        by_state.setdefault(d["state"], []).append(d)
    assert len(by_state["DONE"]) == 2 and len(by_state["ERROR"]) == 3, by_state
    assert all(e["error"]["message"].startswith("invalid trial document") for e in by_state["ERROR"])
    shared = _worker(mongo_url, store.db_name, "--allow", str(HOSTILE))  # meets the non-string exp_key
    assert shared.returncode == 0 and "Traceback" not in shared.stderr, shared.stderr
    assert trials.find_one({"tid": 8})["state"] == "ERROR"
    assert trials.find_one({"tid": 9})["state"] == "NEW"  # a count no update can add to: never claimed
    # readers leave out what is not a trial and show the rest
    assert sorted(d["tid"] for d in store.history("junk")) == [0, 1, 2, 4]
    coord = Coordinator(store, "junk", space, rand.suggest, StopRules(6), objective=f"{HOSTILE}:quad")
    coord.start(resume=True)
    assert coord.finished == 4


def test_resume_with_another_objective_fails_unless_allowed(store):
    space = compile_space(hostile_objectives.space)
    Coordinator(store, "e", space, rand.suggest, StopRules(3), objective=f"{HOSTILE}:quad").start()
    store.release_coordinator("e", store.get_experiment("e")["coordinator"]["owner"])
    other = Coordinator(store, "e", space, rand.suggest, StopRules(3), objective=f"{HOSTILE}:misbehave")
    with pytest.raises(ObjectiveMismatch, match="--allow-objective-change"):
        other.start(resume=True)
    other.start(resume=True, allow_objective_change=True)
    assert store.get_experiment("e")["objective"] == f"{HOSTILE}:misbehave"


def _project(root: Path) -> Path:
    """A project directory with an objective file, and a json.py beside it that would break any
    worker that let it shadow the standard library."""
    root.mkdir(parents=True)
    (root / "proj.py").write_text(
        "import helpers\nfrom hyperdist import hp\n"
        "space = {'x': hp.uniform('x', -1, 1)}\n"
        "def objective(cfg):\n    return helpers.square(cfg['x'])\n")
    (root / "helpers.py").write_text("def square(x):\n    return x * x\n")
    (root / "json.py").write_text("raise RuntimeError('json.py shadowed the standard library')\n")
    return root


def test_a_search_in_a_path_with_spaces_and_a_shadowing_file_completes(mongo_url, db_name, tmp_path):
    project = _project(tmp_path / "my project")
    run = subprocess.run([HYPERDIST, "search", "proj.py:objective", "--space", "proj.py:space",
                          "--max-evals", "8", "--workers", "2", "--mongo", mongo_url, "--db", db_name,
                          "--exp", "spaces", "--no-progress"], cwd=project, env=worker_env(), capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr + run.stdout
    store = Store(mongo_url, db=db_name)
    assert store.get_experiment("spaces")["objective"] == "proj.py:objective"  # stored relative
    assert [d["state"] for d in store.history("spaces")] == ["DONE"] * 8
    store.close()


def test_a_worker_elsewhere_with_its_own_copy_runs_a_relative_file_reference(mongo_url, db_name, tmp_path):
    here = _project(tmp_path / "coordinator")
    there = tmp_path / "worker machine" / "checkout"
    shutil.copytree(here, there)
    search = subprocess.Popen([HYPERDIST, "search", "proj.py:objective", "--space",
                               "proj.py:space", "--max-evals", "6", "--workers", "0", "--mongo", mongo_url,
                               "--db", db_name, "--exp", "far", "--no-progress"], cwd=here, env=worker_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    store = Store(mongo_url, db=db_name)
    try:
        wait_until(lambda: store.counts("far")["NEW"] > 0, 60, "the search's first trials")
        worker = _worker(mongo_url, db_name, "--exp", "far", "--allow", "proj.py", cwd=tmp_path / "worker machine",
                         timeout=120)
        assert "does not exist" in worker.stderr and "--path" in worker.stderr  # wrong directory: says where
        assert worker.returncode == 1 and store.counts("far")["ERROR"] == 0  # and fails no trial
        worker = _worker(mongo_url, db_name, "--exp", "far", "--allow", f"checkout{__import__('os').pathsep}x.py",
                         "--path", "checkout", cwd=tmp_path / "worker machine", timeout=120)
        assert worker.returncode == 0, worker.stderr
        out, _ = search.communicate(timeout=120)
    finally:
        search.kill()
    assert search.returncode == 0, out
    states = [d["state"] for d in store.history("far")]
    store.close()
    assert states == ["DONE"] * 6, states


def test_reading_a_url_with_a_missing_ca_file_is_one_line(tmp_path):
    from click.testing import CliRunner

    res = CliRunner().invoke(main, ["list", "--mongo", f"mongodb://u:s3cr%2Ft@localhost:1/?tls=true&tlsCAFile={tmp_path}/no.pem"])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "Traceback" not in res.output
    assert "tlsCAFile" in res.output and "s3cr" not in res.output


def test_exported_json_of_hostile_results_is_valid(mongo_url, store):
    space = compile_space(hostile_objectives.space)
    _plant(store, "nan", f"{HOSTILE}:quad", space.to_json(), [{"kind": 0}])
    raw.database(store)["trials"].update_one({"exp_key": "nan"}, {"$set": {"state": "DONE", "result": {
        "loss": float("nan"), "status": "ok", "extra": [float("inf")]}}})
    from click.testing import CliRunner

    res = CliRunner().invoke(main, ["export", "nan", "--format", "json", "--mongo", mongo_url, "--db", store.db_name])
    assert res.exit_code == 0, res.output
    json.loads(res.output, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


def test_an_objective_that_replaces_the_signal_handlers_still_hands_its_trial_back(mongo_url, store, tmp_path):
    import signal

    space = compile_space(hostile_objectives.space)
    _plant(store, "sig", f"{HOSTILE}:grabs_signals", space.to_json(), [{"kind": 0}, {"kind": 0}])
    worker = subprocess.Popen([sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db",
                               store.db_name, "--exp", "sig", "--allow", str(HOSTILE), "--idle-timeout", "30"],
                              env=worker_env(HYPERDIST_TEST_MARKER=str(tmp_path / "marker")), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: store.counts("sig")["DONE"] == 1 and store.counts("sig")["RUNNING"] == 1, 60,
                    "one trial done and the next running")
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0 and "restoring them" in out, out
    assert store.counts("sig") == {"NEW": 1, "RUNNING": 0, "DONE": 1, "ERROR": 0}
