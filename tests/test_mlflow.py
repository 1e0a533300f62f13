"""MLflow tracking against a local file store, read back through MlflowClient: one-process fmin,
a distributed search with real workers (the coordinator logs), a resume, and a server that is down."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install '.[mlflow]'")

from hyperdist import Trials, fmin, hp  # noqa: E402
from hyperdist.objective.pruning import TrialPruned  # noqa: E402
from hyperdist.store import Store  # noqa: E402
from harness import TESTS, worker_env  # noqa: E402

SPACE = {"x": hp.uniform("x", -5, 5), "kind": hp.choice("kind", ["linear", "rbf"])}


@pytest.fixture
def file_store(tmp_path, monkeypatch) -> str:
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores for those who ask
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from tests
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    return uri


def _children(client, experiment_id: str) -> tuple[object, list]:
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("hyperdist.role") == "experiment"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["hyperdist.tid"]))


def _objective(cfg, ctx):
    for step in range(1, 4):
        ctx.report(step, cfg["x"] ** 2 + 1.0 / step)
    if cfg["x"] > 3:
        raise ValueError("x too large")
    if cfg["x"] < -3:
        raise TrialPruned()
    return cfg["x"] ** 2


def test_fmin_logs_a_parent_and_a_child_run_per_trial(file_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tuning")  # MLflow's own convention picks the experiment
    trials = Trials()
    fmin(_objective, SPACE, max_evals=12, trials=trials, rstate=3, catch_eval_exceptions=True,
         show_progressbar=False, log="mlflow")
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("tuning")
    parent, children = _children(client, experiment.experiment_id)
    assert parent.info.status == "FINISHED" and parent.data.params["max_evals"] == "12"
    assert [int(c.data.tags["hyperdist.tid"]) for c in children] == list(range(12))
    statuses = set()
    for run, trial in zip(children, trials.all_trials):  # trials that raised too (Hyperopt leaves them out of .trials)
        status = trial["result"]["status"]
        statuses.add(status)
        assert run.data.tags["hyperdist.status"] == status
        assert run.info.status == {"ok": "FINISHED", "pruned": "KILLED", "fail": "FAILED"}[status]
        assert run.data.params["kind"] == ["linear", "rbf"][trial["params"]["kind"]]  # the option, not its index
        assert float(run.data.params["x"]) == pytest.approx(trial["params"]["x"])
        history = client.get_metric_history(run.info.run_id, "intermediate")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
               [(s, pytest.approx(trial["params"]["x"] ** 2 + 1.0 / s)) for s in range(1, 4)]
        assert run.data.metrics["duration_seconds"] >= 0
        if status == "ok":
            assert run.data.metrics["loss"] == pytest.approx(trial["result"]["loss"])
        if status == "fail":
            assert run.data.tags["error"] == "ValueError: x too large"
            artifact = client.download_artifacts(run.info.run_id, "traceback.txt")
            assert "raise ValueError" in open(artifact).read()
    assert statuses == {"ok", "fail", "pruned"}, statuses
    assert parent.data.metrics["best_loss"] == pytest.approx(min(trials.losses(), key=lambda v: v or 1e9))


def _search(mongo_url: str, db: str, exp: str, max_evals: int, tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hyperdist", "search", f"{TESTS / 'objectives.py'}:tracked", "--space",
         f"{TESTS / 'objectives.py'}:space", "--max-evals", str(max_evals), "--mongo", mongo_url, "--db", db,
         "--exp", exp, "--workers", "2", "--no-progress", "--log", "mlflow", "--data-dir", str(tmp_path / "data"),
         "--seed", "5", *(["--resume"] if max_evals > 10 else [])],
        env=worker_env(**env), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_distributed_search_is_logged_by_the_coordinator_and_resumes(mongo_url, db_name, file_store, tmp_path):
    run = _search(mongo_url, db_name, "mlf", 10, tmp_path)
    assert run.returncode == 0, run.stderr
    store = Store(mongo_url, db=db_name)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("mlf")  # the hyperdist key names the MLflow experiment
    parent, children = _children(client, experiment.experiment_id)
    docs = {d["tid"]: d for d in store.history("mlf")}
    assert len(children) == 10 and {int(c.data.tags["hyperdist.tid"]) for c in children} == set(docs)
    for run_ in children:
        doc = docs[int(run_.data.tags["hyperdist.tid"])]
        assert run_.data.tags["worker"] == doc["owner"]  # the worker that ran it, on whatever machine
        assert run_.info.start_time == int(doc["claimed"].timestamp() * 1000)
        assert run_.info.end_time == int(doc["finished"].timestamp() * 1000)
        if doc["state"] == "DONE":
            assert run_.data.metrics["loss"] == pytest.approx(doc["result"]["loss"])
        else:
            assert run_.data.tags["error"].startswith("ValueError: x=")
        assert run_.data.params["branch"] == f"option {doc['params']['branch']}"  # SearchSpace.readable's name
    # a resume continues the same parent run and logs only the new trials
    run = _search(mongo_url, db_name, "mlf", 14, tmp_path)
    assert run.returncode == 0, run.stderr
    parent2, children = _children(client, experiment.experiment_id)
    assert parent2.info.run_id == parent.info.run_id and parent2.info.status == "FINISHED"
    assert sorted(int(c.data.tags["hyperdist.tid"]) for c in children) == sorted(d["tid"] for d in store.history("mlf"))
    store.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_tracking_server_that_is_down_costs_no_trial(mongo_url, db_name, tmp_path, file_store):
    down = f"http://127.0.0.1:{_closed_port()}"
    run = _search(mongo_url, db_name, "down", 8, tmp_path, MLFLOW_TRACKING_URI=down)  # MLflow's own retries as set
    assert run.returncode == 0, run.stderr
    refused = f"MLflow at {down} cannot be reached: Connection refused"
    assert run.stderr.count("cannot log to the tracker") == 1 and refused in run.stderr
    ended = [line for line in run.stderr.splitlines() if "finished trials were not logged to the tracker" in line]
    assert len(ended) == 1 and refused in ended[0] and "hyperdist mlflow down" in ended[0]
    store = Store(mongo_url, db=db_name)
    assert store.counts("down")["DONE"] + store.counts("down")["ERROR"] == 8
    # the backfill while the server is still down: says where it logs at once, then why it could not
    sync = [sys.executable, "-m", "hyperdist", "mlflow", "down", "--mongo", mongo_url, "--db", db_name]
    failed = subprocess.run(sync, env=worker_env(MLFLOW_TRACKING_URI=down), capture_output=True, text=True,
                            timeout=120)
    lines = failed.stderr.splitlines()
    assert failed.returncode == 1 and len(lines) == 2, failed.stderr
    assert lines[0].startswith(f"logging the finished trials of 'down' to MLflow at {down}")
    assert lines[1].startswith("error: cannot log to MLflow") and refused in lines[1] and "search" not in lines[1]
    # once a tracker answers, `hyperdist mlflow` logs what is missing, and only that
    first = subprocess.run(sync, env=worker_env(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "logged 8 trials of 'down'" in first.stdout
    again = subprocess.run(sync, env=worker_env(), capture_output=True, text=True, timeout=120)
    assert "logged 0 trials" in again.stdout
    client = mlflow.MlflowClient()
    _, children = _children(client, client.get_experiment_by_name("down").experiment_id)
    assert len(children) == 8
    store.close()


def _documented_tags() -> set[str]:
    """The tag names docs/integrations.md gives in its 'What is logged' paragraph."""
    import re

    text = (TESTS.parent / "docs" / "integrations.md").read_text()
    paragraph = text[text.index("What is logged:"):].split("\n\n")[0]
    return set(re.findall(r"`([a-z]+(?:\.[a-z_]+)*)`", paragraph))


@pytest.mark.slow
def test_the_tags_written_are_the_ones_the_docs_name(mongo_url, db_name, file_store, tmp_path):
    """Every tag a child run gets is named in docs/integrations.md; `device` only where the worker had
    CUDA_VISIBLE_DEVICES (here a distributed search whose workers see GPU 0; a one-process fmin has none)."""
    documented = _documented_tags()
    assert {"hyperdist.role", "hyperdist.exp_key", "hyperdist.tid", "hyperdist.status", "worker", "device",
            "error"} <= documented, documented
    run = _search(mongo_url, db_name, "tags", 6, tmp_path, CUDA_VISIBLE_DEVICES="0")
    assert run.returncode == 0, run.stderr
    client = mlflow.MlflowClient()
    parent, children = _children(client, client.get_experiment_by_name("tags").experiment_id)
    assert {k for k in parent.data.tags if not k.startswith("mlflow.")} == {"hyperdist.role", "hyperdist.exp_key"}
    for child in children:
        ours = {k for k in child.data.tags if not k.startswith("mlflow.")}
        assert ours <= documented and child.data.tags["device"] == "gpu:0", child.data.tags
    fmin(_objective, SPACE, max_evals=6, trials=Trials(), rstate=3, catch_eval_exceptions=True,
         show_progressbar=False, log="mlflow")
    _, children = _children(client, "0")
    for child in children:
        ours = {k for k in child.data.tags if not k.startswith("mlflow.")}
        assert ours in ({"hyperdist.tid", "hyperdist.status", "worker"},
                        {"hyperdist.tid", "hyperdist.status", "worker", "error"}), ours
