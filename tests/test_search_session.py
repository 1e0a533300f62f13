"""A search as a person runs it: the real CLI in subprocesses against a real server. It never hangs
in silence, shows its failures, and leaves nothing running behind when stopped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperdist.server.embedded import server_status
from hyperdist.store import Store
from harness import TESTS, wait_until, worker_env

pytestmark = pytest.mark.slow
OBJECTIVES = TESTS / "objectives.py"


def _search(fn: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "hyperdist", "search", f"{OBJECTIVES}:{fn}", "--space", f"{OBJECTIVES}:space",
            "--no-progress", *args]


def _search_on(mongo_url: str, db_name: str, key: str, *, max_evals: int, workers: int, delay: float,
               quiet: bool = False) -> subprocess.Popen:
    """`hyperdist search` of the quadratic objective on the test server, its trials taking `delay` s."""
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(_search("quadratic", "--max-evals", str(max_evals), "--workers", str(workers), "--mongo",
                                    mongo_url, "--db", db_name, "--exp", key),
                            env=worker_env(HYPERDIST_TEST_DELAY=str(delay)), stdout=out, stderr=out, text=True)


def _wait_done(store: Store, key: str, n: int) -> None:
    wait_until(lambda: any(e["_id"] == key for e in store.list_experiments()) and store.counts(key)["DONE"] >= n,
               90, "trials finished")


def _hd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", *args], env=worker_env(), capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _pids_mentioning(text: str) -> set[int]:
    """hyperdist processes whose command line names the experiment `--exp text` (a unique key:
    other processes on the machine may mention a common word)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"hyperdist" in b" ".join(argv) and text.encode() in argv:
                found.add(int(entry.name))
    return found


def test_objective_that_always_raises_ends_the_search_with_its_traceback(mongo_url, db_name):
    run = subprocess.run(_search("raises", "--max-evals", "200", "--workers", "2", "--mongo", mongo_url,
                                 "--db", db_name, "--exp", "broken"),
                         env=worker_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "RuntimeError: always broken" in run.stderr
    assert "Traceback (most recent call last)" in run.stderr and 'raise RuntimeError("always broken")' in run.stderr
    assert "trials all failed" in run.stderr  # the workers' own exit reason
    store = Store(mongo_url, db=db_name)
    assert store.get_experiment("broken")["state"] == "stopped"
    assert store.counts("broken")["RUNNING"] == 0
    store.close()


def test_objective_killing_its_worker_ends_the_search_naming_the_exit(mongo_url, db_name):
    run = subprocess.run(_search("exits", "--max-evals", "50", "--workers", "2", "--mongo", mongo_url,
                                 "--db", db_name, "--exp", "exiting"),
                         env=worker_env(), capture_output=True, text=True, timeout=90)
    assert run.returncode == 1, run.stderr
    assert "every local worker has exited" in run.stderr
    assert "no other worker has been seen since the search started" in run.stderr  # not "for 30 s": it just began
    assert "exit code 3" in run.stderr or "killed by SIGKILL" in run.stderr, run.stderr
    store = Store(mongo_url, db=db_name)
    assert store.get_experiment("exiting")["state"] == "stopped"
    assert store.counts("exiting")["RUNNING"] == 0  # the dead workers' trials were handed back
    store.close()


def test_a_search_where_every_trial_failed_exits_non_zero_with_a_summary(mongo_url, db_name):
    run = subprocess.run(_search("raises", "--max-evals", "4", "--workers", "1", "--mongo", mongo_url,
                                 "--db", db_name, "--exp", "all-failed"),
                         env=worker_env(), capture_output=True, text=True, timeout=90)
    assert run.returncode == 1, run.stderr
    assert "0 ok, 4 failed, 0 pruned" in run.stderr
    assert "4 x RuntimeError: always broken" in run.stderr
    assert "Traceback (most recent call last)" in run.stderr


def test_summary_counts_ok_trials(mongo_url, db_name):
    run = subprocess.run(_search("quadratic", "--max-evals", "12", "--workers", "2", "--mongo", mongo_url,
                                 "--db", db_name, "--exp", "fine"),
                         env=worker_env(), capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr
    assert "12 trials: 12 ok, 0 failed, 0 pruned" in run.stderr
    assert json.loads(run.stdout)["tid"] >= 0


_THREAD_OBJECTIVE = """
import threading
from hyperdist import hp

threading.Thread(target=threading.Event().wait, name="metrics-pusher").start()  # never ends, not a daemon
space = {"x": hp.uniform("x", -1, 1)}

def objective(cfg):
    return cfg["x"] ** 2
"""


def test_an_objective_module_that_starts_an_endless_thread_does_not_hold_the_search_open(tmp_path, mongo_url, db_name):
    """Python waits for non-daemon threads at exit: the search and its forked workers (which
    imported the module too) say which thread they leave, and end."""
    (tmp_path / "pushing.py").write_text(_THREAD_OBJECTIVE)
    run = subprocess.run([sys.executable, "-m", "hyperdist", "search", "pushing.py:objective", "--space", "pushing.py:space",
                          "--no-progress", "--max-evals", "6", "--workers", "2", "--mongo", mongo_url, "--db", db_name,
                          "--exp", "threaded"], cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "6 trials: 6 ok" in run.stderr
    assert "exiting although thread(s) 'metrics-pusher' are still running" in run.stderr
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                if "--exp threaded" in line]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_everything_the_search_started(tmp_path, local_servers, signum):
    data = tmp_path / "hd"
    key = f"signalled-{signum}-{os.getpid()}"
    search = subprocess.Popen(_search("quadratic", "--max-evals", "500", "--workers", "2", "--data-dir", str(data),
                                      "--exp", key),
                              env=worker_env(HYPERDIST_TEST_DELAY="0.2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        wait_until(lambda: server_status(data) is not None, 60, "the embedded server")
        server = server_status(data)
        store = Store(server.url, db="hyperdist")
        wait_until(lambda: store.counts(key)["DONE"] >= 4 and store.counts(key)["RUNNING"] >= 1, 90,
                    "trials running")
        store.close()
        workers = _pids_mentioning(key) - {search.pid}
        assert len(workers) == 2, workers
        search.send_signal(signum)
        _, err = search.communicate(timeout=90)
    finally:
        search.kill()
    assert search.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "--resume" in err
    for pid in workers | {server.pid}:
        wait_until(lambda: not _alive(pid), 10, f"process {pid} to end")
    assert not _pids_mentioning(key)
    store = Store(local_servers.start(data).url, db="hyperdist")
    assert store.get_experiment(key)["state"] == "stopped"
    assert store.counts(key)["RUNNING"] == 0
    store.close()


def test_default_key_names_file_and_function_and_a_clash_says_what_to_do(mongo_url, db_name):
    args = ("--max-evals", "3", "--workers", "1", "--mongo", mongo_url, "--db", db_name)
    first = subprocess.run(_search("quadratic", *args), env=worker_env(), capture_output=True, text=True, timeout=90)
    assert first.returncode == 0, first.stderr
    assert "experiment 'objectives.quadratic'" in first.stderr
    again = subprocess.run(_search("quadratic", *args), env=worker_env(), capture_output=True, text=True, timeout=90)
    assert again.returncode == 2
    assert "'objectives.quadratic' already exists (done" in again.stderr
    assert "--resume" in again.stderr and "--exp" in again.stderr and "Traceback" not in again.stderr
    unknown = subprocess.run(_search("quadratic", *args, "--exp", "nope", "--resume"), env=worker_env(),
                             capture_output=True, text=True, timeout=90)
    assert unknown.returncode == 2
    assert "no experiment 'nope' to resume" in unknown.stderr and "objectives.quadratic" in unknown.stderr
    store = Store(mongo_url, db=db_name)
    assert [e["_id"] for e in store.list_experiments()] == ["objectives.quadratic"]
    store.close()


def test_hyperdist_stop_stops_a_running_search(mongo_url, db_name):
    search = _search_on(mongo_url, db_name, "asked", max_evals=500, workers=2, delay=0.1)
    store = Store(mongo_url, db=db_name)
    try:
        _wait_done(store, "asked", 3)
        stop = _hd("stop", "asked", "--mongo", mongo_url, "--db", db_name)
        assert stop.returncode == 0, stop.stderr
        assert "asked the search on 'asked' to stop" in stop.stdout
        _, err = search.communicate(timeout=90)
    finally:
        search.kill()
    assert search.returncode == 3, err
    assert "stop requested by" in err and "--resume" in err
    assert store.get_experiment("asked")["state"] == "stopped"
    counts = store.counts("asked")
    assert counts["RUNNING"] == 0
    assert f"stopped at {counts['DONE'] + counts['ERROR']} trials" in err
    again = _hd("stop", "asked", "--mongo", mongo_url, "--db", db_name)
    assert again.returncode == 2 and "no search is running on 'asked' (stopped)" in again.stderr
    missing = _hd("stop", "nope", "--mongo", mongo_url, "--db", db_name)
    assert missing.returncode == 2 and "no experiment 'nope'" in missing.stderr
    store.close()


def test_ctrl_c_reports_every_trial_that_finished_while_the_workers_stopped(mongo_url, db_name):
    """The last line counts what the store holds, including trials that finished after the
    coordinator's last read (3 workers on 0.3 s trials: some always finish during the stop)."""
    key = f"ctrl-c-{os.getpid()}"
    search = _search_on(mongo_url, db_name, key, max_evals=500, workers=3, delay=0.3)
    store = Store(mongo_url, db=db_name)
    try:
        _wait_done(store, key, 6)
        search.send_signal(signal.SIGINT)
        _, err = search.communicate(timeout=90)
    finally:
        search.kill()
    counts = store.counts(key)
    assert f"stopped at {counts['DONE'] + counts['ERROR']} trials ({counts['DONE']} ok" in err, (counts, err)
    store.close()


def test_mongotrials_without_workers_prints_the_worker_command(mongo_url, db_name, capsys):
    """fmin with MongoTrials has no local workers: after 10 s alone it says how to start one."""
    from hyperdist import MongoTrials, fmin, tpe
    import objectives

    late = subprocess.Popen(
        ["sh", "-c", f'sleep 12; exec "{sys.executable}" -m hyperdist worker --mongo "{mongo_url}" --db {db_name} '
                     f'--exp mt-hint --allow objectives --idle-timeout 30'],
        env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        trials = MongoTrials(mongo_url, exp_key="mt-hint", db=db_name)
        fmin(objectives.quadratic, objectives.space, algo=tpe.suggest, max_evals=4, trials=trials, rstate=1,
             show_progressbar=False)
        assert late.wait(60) == 0
    finally:
        late.kill()
    err = capsys.readouterr().err
    assert "no worker has claimed a trial of 'mt-hint'" in err
    import shlex

    command = f"hyperdist worker --mongo {shlex.quote(mongo_url)} --db {db_name} --exp mt-hint"
    assert f"{command} --path {shlex.quote(os.getcwd())} --allow objectives:quadratic" in err
    assert len(trials) == 4


def test_local_workers_gone_but_another_worker_working_the_search_goes_on(mongo_url, db_name):
    """Only when nobody else works on the experiment does the end of the local workers end the search."""
    from harness import start_worker

    key = f"shared-{os.getpid()}"
    search = _search_on(mongo_url, db_name, key, max_evals=40, workers=1, delay=0.1)
    store = Store(mongo_url, db=db_name)
    other = None
    try:
        _wait_done(store, key, 2)
        other = start_worker(mongo_url, db_name, key, worker_env(HYPERDIST_TEST_DELAY="0.1"))
        wait_until(lambda: len({d.get("owner") for d in store.history(key)} - {None}) >= 2, 60,
                    "the other worker's first trial")
        local = _pids_mentioning(key) - {search.pid, other.pid}
        assert len(local) == 1, local
        os.kill(local.pop(), signal.SIGKILL)
        out, err = search.communicate(timeout=120)
        assert other.wait(60) == 0
    finally:
        search.kill()
        if other is not None:
            other.kill()
    assert search.returncode == 0, err
    assert "worker 0" in err and "killed by SIGKILL" in err
    assert "40 trials: 40 ok" in err and json.loads(out)["loss"] >= 0
    store.close()


def test_stop_signals_raise_once_and_are_restored():
    """The first SIGTERM raises where the search is; a second one while it cleans up does not cut
    the cleanup short; afterwards the previous handlers are back."""
    from hyperdist.distributed.session import Interrupted, stop_signals

    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with pytest.raises(Interrupted) as caught:
        with stop_signals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # acknowledged, not raised
                time.sleep(0.05)
                cleaned = True
    assert cleaned and caught.value.exit_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_trials_lost_together_are_told_in_one_line_per_worker():
    """A worker holding a batch of short trials that dies loses them all at once: one line names the
    worker and its trials (28 near-identical lines before, after a resume following kill -9)."""
    from types import SimpleNamespace

    from hyperdist.distributed.session import Session
    from hyperdist.store import LostLease

    said: list[str] = []
    session = Session.__new__(Session)
    session.say = said.append
    session.watch = SimpleNamespace(lost_lease=lambda: said.append("(watch told)"))
    session.coord = SimpleNamespace(lost=[LostLease(t, "vm:1", 1, 3) for t in range(10, 30, 2)]
                                    + [LostLease(5, "vm:2", 1, 3), LostLease(6, "vm:2", 3, 3), LostLease(7, "vm:2", 3, 3)])
    session._tell_lost()
    assert said == [
        "trials 10, 12, 14, 16, 18, 20 and 4 more: worker vm:1 stopped heartbeating (their leases expired); "
        "handed out again (attempt 1 of 3 lost)",
        "trial 5: worker vm:2 stopped heartbeating (its lease expired); handed out again (attempt 1 of 3 lost)",
        "trials 6 and 7: worker vm:2 stopped heartbeating (their leases expired); on attempt 3 of 3; each ends "
        "ERROR (LeaseExpired)",
        "(watch told)"]
    assert session.coord.lost == []


def test_local_workers_end_when_the_search_is_killed(mongo_url, db_name):
    """SIGKILL leaves the search no chance to stop its workers; Linux tells them (PR_SET_PDEATHSIG):
    they hand their trials back and exit instead of idling for --idle-timeout."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signals are Linux's")
    key = f"killed-{os.getpid()}"
    search = _search_on(mongo_url, db_name, key, max_evals=500, workers=2, delay=0.2, quiet=True)
    store = Store(mongo_url, db=db_name)
    try:
        wait_until(lambda: store.counts(key)["DONE"] >= 2 and store.counts(key)["RUNNING"] >= 1, 90,
                    "trials running")
        workers = _pids_mentioning(key) - {search.pid}
        assert len(workers) == 2, workers
        search.kill()
        search.wait()
        for pid in workers:
            wait_until(lambda: not _alive(pid), 30, f"worker {pid} to end")
        assert store.counts(key)["RUNNING"] == 0  # handed back, not left to expire
    finally:
        search.kill()
        store.close()


def test_a_file_objective_can_hand_its_own_functions_to_spawned_processes(tmp_path, local_servers):
    """multiprocessing's spawn (and joblib, PyTorch's DataLoader) import the objective's module by
    name in the child: a file objective is loaded under its own stem, so they find it."""
    (tmp_path / "spawny.py").write_text(
        "import multiprocessing as mp\nfrom hyperdist import hp\nspace = {'x': hp.uniform('x', -1, 1)}\n"
        "def sq(v):\n    return v * v\n"
        "def objective(cfg):\n    with mp.get_context('spawn').Pool(1) as pool:\n"
        "        return sum(pool.map(sq, [cfg['x'], 1.0]))\n")
    run = subprocess.run([sys.executable, "-m", "hyperdist", "search", "spawny.py:objective", "--space",
                          "spawny.py:space", "--max-evals", "2", "--workers", "1", "--data-dir", str(tmp_path / "hd"),
                          "--exp", "spawny"], cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert "2 trials: 2 ok" in run.stderr


def test_a_local_worker_stopped_by_someone_is_reported_and_the_search_goes_on(mongo_url, db_name):
    key = f"one-gone-{os.getpid()}"
    search = _search_on(mongo_url, db_name, key, max_evals=40, workers=2, delay=0.1)
    store = Store(mongo_url, db=db_name)
    try:
        _wait_done(store, key, 2)
        workers = sorted(_pids_mentioning(key) - {search.pid})
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGTERM)
        _, err = search.communicate(timeout=120)
    finally:
        search.kill()
    assert search.returncode == 0, err
    assert "stopped by signal" in err and "1 of 2 local workers left" in err
    assert "40 trials: 40 ok" in err
    store.close()


def test_the_worker_command_a_search_without_workers_prints_works_from_another_directory(mongo_url, db_name, tmp_path):
    """--workers 0 prints the command to start a worker; run as printed from elsewhere, it serves the search."""
    import shlex

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "proj.py").write_text("from hyperdist import hp\nspace = {'x': hp.uniform('x', -1, 1)}\n"
                                     "def objective(cfg):\n    return cfg['x'] ** 2\n")
    search = subprocess.Popen([sys.executable, "-m", "hyperdist", "search", "proj.py:objective", "--space",
                               "proj.py:space", "--max-evals", "5", "--workers", "0", "--mongo", mongo_url, "--db",
                               db_name, "--exp", "hinted", "--no-progress"], cwd=project, env=worker_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert search.stdout is not None
        lines = []
        for line in search.stdout:
            lines.append(line)
            if "start workers" in line:
                break
        command = shlex.split(next(search.stdout))
        assert command[:2] == ["hyperdist", "worker"] and "--path" in command, lines
        worker = subprocess.run([sys.executable, "-m", "hyperdist", *command[1:], "--idle-timeout", "5"], cwd=elsewhere,
                                env=worker_env(), capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stdout + worker.stderr
        out, _ = search.communicate(timeout=120)
    finally:
        search.kill()
    assert search.returncode == 0, "".join(lines) + out
    store = Store(mongo_url, db=db_name)
    assert [d["state"] for d in store.history("hinted")] == ["DONE"] * 5
    store.close()


def test_a_trial_running_long_is_named_once(store):
    """A hung objective without --trial-timeout: the watch names the trial and its worker, once."""
    from hyperdist import rand
    from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
    from hyperdist.distributed.watch import WorkerWatch
    from hyperdist.space.compiled import compile_space
    import objectives

    coord = Coordinator(store, "long", compile_space(objectives.space), rand.suggest, StopRules(3),
                        CoordinatorConfig(seed=1, workers=1, queue=0), objective=f"{OBJECTIVES}:hang")
    coord.start()
    coord.tick()
    _, claimed = store.report_and_claim([], "elsewhere:42", 30.0, "long", 1)
    said: list[str] = []
    watch = WorkerWatch(store, "long", reap=coord.reap, hint=None, say=said.append, long_after=0.0)
    for _ in range(3):
        watch.check(max(coord.open.values(), default=0))
    import re

    tid = claimed[0]["tid"]
    assert len(said) == 1 and re.fullmatch(
        rf"trial {tid} has run for \d+ s on worker elsewhere:42 \(no --trial-timeout is set, so it runs until the "
        r"objective returns; `hyperdist stop long` ends the search\)", said[0]), said
