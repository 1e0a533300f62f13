"""Status, plots, report, export and importance on a real experiment in the wire server."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from hyperdist import Trials, fmin, hp, rand
from hyperdist.cli import main
from hyperdist.views.importance import importances
from hyperdist.space import compile_space
from hyperdist.store import DONE, ERROR, Store

SPACE = {
    "lr": hp.loguniform("lr", -8, 0),
    "noise": hp.uniform("noise", 0, 1),
    "model": hp.choice("model", [{"k": "a"}, {"k": "b", "depth": hp.quniform("depth", 1, 9, 1)}]),
}


def _loss(p: dict) -> float:
    return (np.log(p["lr"]) + 4) ** 2 + 0.01 * p["noise"] + (0 if p["model"] == 1 else 2.0)


@pytest.fixture
def experiment(store: Store):
    """40 finished trials (3 failed) written through the real protocol: claim, then report."""
    space = compile_space(SPACE)
    store.create_experiment("views", space=space.to_json(), space_hash=space.hash, objective="m:f",
                            algo={"name": "rand"}, max_evals=40, seed=0)
    rows = space.sample(np.random.default_rng(1), 40)
    store.insert_trials("views", [(i, space.to_assignment(r)) for i, r in enumerate(rows)])
    for i in range(40):
        doc = store.claim(f"worker-{i % 3}", 30, "views")
        if i % 13 == 5:
            store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail"},
                         {"type": "RuntimeError", "message": "boom"})
        else:
            store.report(doc["_id"], doc["lease_token"], DONE, {"loss": _loss(doc["params"]), "status": "ok"})
    return store


def _cli(store: Store, *args: str):
    url = store._url
    result = CliRunner().invoke(main, [*args, "--mongo", url, "--db", store.db_name], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_counts_best_rate_and_importance(experiment):
    out = _cli(experiment, "status", "views")
    assert "40/40 finished" in out and "DONE=37" in out and "ERROR=3" in out
    assert "best: loss=" in out and "importance:" in out
    watched = _cli(experiment, "status", "views", "--watch", "--interval", "0.1", "--count", "3")
    assert watched.count("experiment views") == 3


def test_importance_ranks_the_parameters_that_matter():
    space = compile_space(SPACE)
    rng = np.random.default_rng(0)
    X = space.sample(rng, 300)
    loss = np.array([_loss(space.to_assignment(r)) for r in X])
    imp = importances(space, X, loss)
    assert imp["lr"] > imp["noise"] and imp["model"] > imp["noise"]
    assert imp["noise"] < 0.05


def test_plots_are_written_as_png_and_svg(experiment, tmp_path):
    out = _cli(experiment, "plot", "views", "--out", str(tmp_path / "plots"))
    files = {p.name for p in (tmp_path / "plots").iterdir()}
    for name in ("history", "parameters", "parallel", "timeline"):
        assert {f"{name}.png", f"{name}.svg"} <= files
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert b"<svg" in (tmp_path / "plots" / f"{name}.svg").read_bytes()[:2000]
    assert str(tmp_path / "plots" / "history.png") in out


def test_export_round_trips(experiment, tmp_path):
    history = experiment.history("views")
    rows = list(csv.DictReader(io.StringIO(_cli(experiment, "export", "views", "--format", "csv"))))
    assert len(rows) == 40 and {"tid", "state", "loss", "param.lr"} <= set(rows[0])
    by_tid = {int(r["tid"]): r for r in rows}
    for d in history:
        if d["state"] == DONE:
            assert float(by_tid[d["tid"]]["loss"]) == pytest.approx(d["result"]["loss"])
    path = tmp_path / "t.json"
    _cli(experiment, "export", "views", "--format", "json", "--out", str(path))
    assert [r["tid"] for r in json.loads(path.read_text())] == [d["tid"] for d in history]
    lines = _cli(experiment, "export", "views", "--format", "jsonl").splitlines()
    assert len(lines) == 40 and json.loads(lines[3])["tid"] == 3


def test_trials_to_dataframe():
    pd = pytest.importorskip("pandas")
    trials = Trials()
    fmin(lambda c: c["x"], {"x": hp.uniform("x", 0, 1)}, algo=rand.suggest, max_evals=5, trials=trials,
         show_progressbar=False)
    frame = trials.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5 and {"tid", "loss", "x"} <= set(frame.columns)


def test_report_renders_in_a_headless_browser(experiment, tmp_path):
    report = tmp_path / "report.html"
    _cli(experiment, "report", "views", "--out", str(report))
    text = report.read_text()
    best = min((d for d in experiment.history("views") if d["state"] == DONE), key=lambda d: d["result"]["loss"])
    assert f"best loss <b>{best['result']['loss']:.6g}</b>" in text and text.count("data:image/png;base64") == 4
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium')")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert "id=\"best-loss\"" in dom and f"{best['result']['loss']:.6g}" in dom
    assert dom.count("<tr>") >= 40
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000
