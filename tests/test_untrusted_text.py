"""Text an objective (or anyone who can write the database) stores reaches people only redacted and
inert: a password in an objective's error is never stored, and one planted in an old document is
hidden by every command that reads it; terminal control sequences in an experiment key or an error
never reach a worker's log. Real searches, workers and commands against a real wire server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hyperdist.cli import main
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import worker_env

SECRET = "s3cret"
LEAK = (f'from hyperdist import hp\nspace = {{"x": hp.uniform("x", 0, 1)}}\n'
        f'def objective(cfg):\n    raise ConnectionError("cannot reach mongodb://admin:{SECRET}@db.example:27017/x")\n')
READS = (("status",), ("trials",), ("trials", "--state", "error"), ("export", "--format", "csv"),
         ("export", "--format", "json"), ("export", "--format", "jsonl"))


def _search(tmp_path: Path, source: str, exp: str, url: str, db: str) -> subprocess.CompletedProcess:
    """`hyperdist search` of the objective in `source`, as a person runs it, from tmp_path."""
    (tmp_path / "obj.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "hyperdist", "search", "obj.py:objective", "--space", "obj.py:space", "--max-evals",
         "2", "--workers", "1", "--exp", exp, "--mongo", url, "--db", db, "--no-progress"],
        cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=240)


def _read(url: str, db: str, exp: str, *args: str) -> str:
    command, rest = args[0], list(args[1:])
    result = CliRunner().invoke(main, [command, exp, *rest, "--mongo", url, "--db", db])
    assert result.exit_code in (0, 1), (args, result.output, result.exception)
    return result.output


def test_a_password_in_an_objective_error_is_never_stored_logged_or_printed(mongo_url, db_name, tmp_path):
    """The walker's repro: the error names a MongoDB URL with its password."""
    run = _search(tmp_path, LEAK, "leak", mongo_url, db_name)
    assert "ConnectionError" in run.stderr and SECRET not in run.stdout + run.stderr
    assert "mongodb://***@db.example:27017/x" in run.stderr
    store = Store(mongo_url, db=db_name)
    try:
        docs = list(raw.trials(store).find({"exp_key": "leak"}))
        assert len(docs) == 2 and all(d["state"] == "ERROR" for d in docs)
        assert all("mongodb://***@db.example" in d["error"]["message"] and "mongodb://***@db.example"
                   in d["error"]["traceback"] for d in docs)
        assert SECRET not in json.dumps([{"error": d["error"], "result": d["result"]} for d in docs])
        logs = "".join(p.read_text() for p in (tmp_path / ".hyperdist").glob("worker-*.log"))
        assert "ERROR" in logs and SECRET not in logs
        for args in (*READS, ("show", "0"), ("show", "1")):
            out = _read(mongo_url, db_name, "leak", *args)
            assert "ConnectionError" in out and SECRET not in out and "mongodb://***@db.example" in out, args
    finally:
        raw.client(store).drop_database(db_name)
        store.close()


@pytest.fixture
def planted(store: Store) -> Store:
    """Four trials, three failed as an older worker (or anyone with write access) stored them: a
    password in two errors' message and traceback (the most frequent error), and in a result's failure."""
    from hyperdist import hp
    from hyperdist.space.compiled import compile_space
    from hyperdist.store import DONE, ERROR

    space = compile_space({"x": hp.uniform("x", 0, 1)})
    store.create_experiment("old", space=space.to_json(), space_hash=space.hash, objective="m:f",
                            algo={"name": "rand"}, max_evals=4, seed=0)
    store.insert_trials("old", [(i, {"x": 0.1 * (i + 1)}) for i in range(4)])
    url = f"mongodb://admin:{SECRET}@db.example:27017/x?tls=true&tlsCertificateKeyFilePassword=k3y"
    error = {"type": "ConnectionError", "message": f"cannot reach {url}",
             "traceback": f"Traceback (most recent call last):\n  ...\nConnectionError: cannot reach {url}\n"}
    while (doc := store.claim("host:1", 30, "old")) is not None:
        if doc["tid"] == 0:
            store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 0.5, "status": "ok"})
        elif doc["tid"] == 3:
            store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail", "failure": f"returned {url}"})
        else:
            store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail"}, error)
    return store


def test_every_command_hides_a_password_planted_in_a_stored_error(planted, tmp_path):
    url, db = planted.url, planted.db_name
    for args in (*READS, ("show", "1"), ("show", "3")):
        out = _read(url, db, "old", *args)
        assert SECRET not in out and "k3y" not in out and "mongodb://***@db.example" in out, (args, out)
    out = tmp_path / "old.csv"
    _read(url, db, "old", "export", "--out", str(out))
    assert "mongodb://***@db.example" in out.read_text() and SECRET not in out.read_text()


def test_mlflow_gets_the_planted_error_redacted(planted, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install '.[mlflow]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _read(planted.url, planted.db_name, "old", "mlflow")
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("old").experiment_id])
    failed = {r.data.tags["hyperdist.tid"]: r for r in runs if r.data.tags.get("hyperdist.status") == "fail"}
    assert set(failed) == {"1", "2", "3"}
    tag = failed["1"].data.tags["error"]
    assert tag.startswith("ConnectionError: cannot reach mongodb://***@db.example") and SECRET not in tag
    artifact = Path(client.download_artifacts(failed["1"].info.run_id, "traceback.txt")).read_text()
    assert "mongodb://***@db.example" in artifact and SECRET not in artifact and "k3y" not in artifact
    assert SECRET not in json.dumps([r.data.tags for r in runs])


ESC_KEY = "esc\x1b[31mRED\x1b]0;pwn\x07"
ESC_ERROR = ('from hyperdist import hp\nspace = {"x": hp.uniform("x", 0, 1)}\n'
             'def objective(cfg):\n    raise ValueError("\\x1b[2J\\x1b]52;c;ZWNobyBwd24=\\x07 cleared")\n')


def test_worker_logs_carry_no_terminal_control_from_a_key_or_an_error(mongo_url, db_name, tmp_path):
    """The walker's ESC key, and an objective whose error clears the screen and writes the clipboard:
    the worker's log shows them escaped (\\x1b), as the commands print them."""
    run = _search(tmp_path, ESC_ERROR, ESC_KEY, mongo_url, db_name)
    assert "ValueError" in run.stderr, run.stderr
    logs = list((tmp_path / ".hyperdist").glob("worker-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "\x1b" not in text and "\x07" not in text, text
    assert "trial 0 of esc\\x1b[31mRED\\x1b]0;pwn\\x07 ERROR: ValueError: \\x1b[2J\\x1b]52;c;" in text, text
    assert "\x1b" not in run.stdout + run.stderr
    store = Store(mongo_url, db=db_name)
    raw.client(store).drop_database(db_name)
    store.close()
