"""The distributed path end to end: real worker processes against a real MongoDB-wire server."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

import objectives
from harness import (OBJECTIVE, all_exit_cleanly, experiment_exists, search_cmd, start_worker,
                     url_with_db, wait_until, worker_env)
from hyperdist import MongoTrials, fmin, tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store

pytestmark = pytest.mark.slow


def test_four_workers_finish_200_trials_each_evaluated_once(mongo_url, db_name, tmp_path):
    log = tmp_path / "evaluations.jsonl"
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "four", compile_space(objectives.space), tpe.suggest, StopRules(200),
                        CoordinatorConfig(seed=7, workers=4), objective=OBJECTIVE)
    coord.start()
    env = worker_env(HYPERDIST_TEST_LOG=str(log))
    workers = [start_worker(mongo_url, db_name, "four", env) for _ in range(4)]
    try:
        progress = coord.run()
        all_exit_cleanly(workers, timeout=60)
    finally:
        for w in workers:
            w.kill()
    assert progress.finished == 200
    counts = store.counts("four")
    assert counts["DONE"] == 200 and counts["ERROR"] == 0 and counts["NEW"] == 0 and counts["RUNNING"] == 0
    history = store.history("four")
    assert sorted(d["tid"] for d in history) == sorted(set(d["tid"] for d in history))
    evaluations = log.read_text().splitlines()
    assert len(evaluations) == 200
    assert len(set(evaluations)) == 200  # no configuration was evaluated twice
    assert store.get_experiment("four")["state"] == "done"
    store.close()


def test_interrupted_search_resumes_to_exactly_max_evals(mongo_url, db_name, tmp_path):
    env = worker_env(HYPERDIST_TEST_DELAY="0.05", HYPERDIST_TEST_LOG=str(tmp_path / "log"))
    common = ["--max-evals", "60", "--mongo", mongo_url, "--db", db_name, "--exp", "resumable", "--workers", "2",
              "--data-dir", str(tmp_path / "hd")]
    first = subprocess.Popen(search_cmd(*common), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(mongo_url, db=db_name)
    try:
        wait_until(lambda: store.counts("resumable")["DONE"] >= 15 if experiment_exists(store, "resumable") else False,
                    60, "15 finished trials")
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert "--resume" in err
    counts = store.counts("resumable")
    assert counts["RUNNING"] == 0  # running trials were handed back
    before = {d["tid"] for d in store.history("resumable") if d["state"] in ("DONE", "ERROR")}
    assert 15 <= len(before) < 60
    assert store.get_experiment("resumable")["state"] == "stopped"

    second = subprocess.run(search_cmd(*common, "--resume"), env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "resumed experiment 'resumable'" in second.stderr
    history = store.history("resumable")
    finished = [d for d in history if d["state"] in ("DONE", "ERROR")]
    assert len(finished) == 60
    assert len({d["tid"] for d in history}) == len(history)
    assert before <= {d["tid"] for d in finished}  # the first run's trials are part of the history
    assert json.loads(second.stdout)["loss"] == min(d["result"]["loss"] for d in finished if d["state"] == "DONE")
    store.close()


def test_embedded_search_end_to_end(tmp_path):
    env = worker_env()
    data = tmp_path / "hd"
    run = subprocess.run(search_cmd("--max-evals", "30", "--workers", "2", "--data-dir", str(data)),
                         env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    best = json.loads(run.stdout)
    assert set(best) == {"tid", "loss", "params", "config", "stored_params"} and "x" in best["params"]
    # a choice reads as its option; the stored index is kept for space_eval
    assert best["stored_params"]["branch"] in (0, 1) and best["params"]["branch"] != best["stored_params"]["branch"]
    server = json.loads((data / "server.json").read_text())  # kept up for the next command (idle limit)
    status = subprocess.run([sys.executable, "-m", "hyperdist", "status", "objectives.quadratic",
                             "--data-dir", str(data)],
                            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "30/30 finished" in status.stdout and "DONE=30" in status.stdout
    assert json.loads((data / "server.json").read_text())["pid"] == server["pid"]  # reused, not restarted
    subprocess.run([sys.executable, "-m", "hyperdist", "server", "stop", "--data-dir", str(data)], env=env, timeout=60)


def test_mongotrials_fmin_with_worker_processes(mongo_url, db_name):
    workers = [start_worker(mongo_url, db_name, "mt", worker_env()) for _ in range(2)]
    try:
        trials = MongoTrials(url_with_db(mongo_url, db_name),
                             exp_key="mt", db=db_name, workers=2)
        best = fmin(objectives.quadratic, objectives.space, algo=tpe.suggest, max_evals=40, trials=trials,
                    show_progressbar=False, rstate=3)
        assert len(trials) == 40 and trials.count_by_state()[2] == 40
        assert best == trials.argmin and abs(best["x"] - 1.0) < 1.5
        for w in workers:  # workers of an experiment exit once it is done
            assert w.wait(30) == 0
        # the same exp_key continues the history (max_evals counts all of it), with new workers
        workers = [start_worker(mongo_url, db_name, "mt", worker_env()) for _ in range(2)]
        fmin(objectives.quadratic, objectives.space, algo=tpe.suggest, max_evals=50, trials=trials,
             show_progressbar=False, rstate=4)
        assert len(trials) == 50
    finally:
        for w in workers:
            w.terminate()
            w.wait(30)
