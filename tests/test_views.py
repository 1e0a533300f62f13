"""Status, plots, report, export and importance on a real experiment in the wire server."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from hyperdist import Trials, fmin, hp, rand
from hyperdist.cli import main
from hyperdist.views.importance import importances
from hyperdist.space.compiled import compile_space
from hyperdist.store import DONE, ERROR, Store
from hyperdist.store import testing as raw

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
    for name in ("history", "slices", "parallel", "importance", "contour", "edf", "timeline"):
        assert {f"{name}.png", f"{name}.svg"} <= files
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert b"<svg" in (tmp_path / "plots" / f"{name}.svg").read_bytes()[:2000]
    assert str(tmp_path / "plots" / "history.png") in out
    assert "curves.png" not in files  # nothing reported intermediate values


def test_plot_of_an_experiment_without_an_ok_trial_says_so_and_writes_nothing(store, tmp_path):
    space = compile_space(SPACE)
    store.create_experiment("failing", space=space.to_json(), space_hash=space.hash, objective="m:f",
                            algo={"name": "rand"}, max_evals=3, seed=0)
    store.insert_trials("failing", [(i, space.to_assignment(r)) for i, r in enumerate(space.sample(np.random.default_rng(0), 3))])
    for _ in range(3):
        doc = store.claim("w", 30, "failing")
        store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail"}, {"type": "KeyError", "message": "'x'"})
    result = CliRunner().invoke(main, ["plot", "failing", "--out", str(tmp_path / "plots"), "--mongo", store._url,
                                       "--db", store.db_name])
    assert result.exit_code == 2  # the CLI's exit code for an error the user can act on
    assert "no trial with an ok loss yet (3 error)" in result.output and "hyperdist trials failing --state error" in result.output
    assert not (tmp_path / "plots").exists()


def test_plot_and_report_survive_planted_params(store, tmp_path):
    """Trials whose params no search could have written (someone outside hyperdist wrote them:
    1e308 in a normal family, infinities, strings) are drawn without them, not a traceback from a
    tick locator (an axis whose span overflowed)."""
    space = compile_space({"x": hp.normal("x", 0, 1), "lr": hp.lognormal("lr", 0, 1), "u": hp.uniform("u", 0, 1)})
    store.create_experiment("planted", space=space.to_json(), space_hash=space.hash, objective="m:f",
                            algo={"name": "rand"}, max_evals=20, seed=0)
    store.insert_trials("planted", [(i, {"x": 0.1 * i, "lr": 0.01 * (i + 1), "u": 0.05 * i}) for i in range(10)])
    for i in range(10):
        doc = store.claim("w", 30, "planted")
        store.report(doc["_id"], doc["lease_token"], DONE, {"loss": float(i), "status": "ok"})
    bad = [{"x": 1e308, "lr": float("nan")}, {"x": -1e308, "lr": 1e300, "u": 7.0}, {"x": float("inf")},
           {"x": "DROP TABLE", "u": {"$gt": 1}}, "notadict"]
    raw.trials(store).insert_many([{"exp_key": "planted", "tid": 900 + i, "state": DONE, "params": p,
                                "result": {"loss": 1.0, "status": "ok"}} for i, p in enumerate(bad)])
    out = _cli(store, "plot", "planted", "--out", str(tmp_path / "plots"))
    assert "history.png" in out and "slices.png" in out
    assert "report.html" in _cli(store, "report", "planted", "--out", str(tmp_path / "report.html"))


@pytest.mark.parametrize("planted", [{"max_evals": "1e999"}, {"max_evals": {"$gt": 1}}, {"max_evals": True},
                                     {"coordinator": "x", "state": "running"}, {"coordinator": ["x"]}])
def test_readers_survive_planted_experiment_fields(experiment, tmp_path, planted):
    """Experiment fields no search writes (someone else wrote the document): every reader shows the
    experiment, with "?" for a max_evals it cannot use, instead of a traceback."""
    raw.database(experiment)["experiments"].update_one({"_id": "views"}, {"$set": planted})
    status = _cli(experiment, "status", "views")
    assert "experiment views" in status and "best: loss=" in status
    if "max_evals" in planted:
        assert "40/? finished" in status and "ETA" not in status
        assert "views" in _cli(experiment, "list") and "40/?" in _cli(experiment, "list")
    assert "report.html" in _cli(experiment, "report", "views", "--out", str(tmp_path / "report.html"))
    from hyperdist.views.summary import experiment_summaries
    [row] = experiment_summaries(experiment)
    assert row["key"] == "views" and (row["max_evals"] is None if "max_evals" in planted else row["max_evals"] == 40)


NOTEBOOK_SPACE = {
    "lr": hp.loguniform("lr", -9, 0),
    "model": hp.choice("model", [{"kind": "linear"}, {"kind": "tree", "depth": hp.quniform("depth", 1, 9, 1)}]),
    "batch": hp.choice("batch", [16, 64, 256]),
}


def _texts(fig) -> set[str]:
    found = {t.get_text() for ax in fig.axes for t in ax.texts + ax.get_xticklabels() + ax.get_yticklabels()}
    return found | {ax.get_title() for ax in fig.axes}


def test_notebook_plots_read_like_the_dashboard():
    """Plots of a local Trials: options by value, a log loss axis over decades, inactive levels."""
    from hyperdist.views import ExperimentView, plots

    trials = Trials()
    fmin(lambda c: float(np.exp(-abs(np.log(c["lr"]) + 4) * 2) * 1e3 + (c["model"]["kind"] == "tree")),
         NOTEBOOK_SPACE, algo=rand.suggest, max_evals=40, trials=trials, show_progressbar=False,
         rstate=np.random.default_rng(3))
    view = ExperimentView.from_trials(trials, NOTEBOOK_SPACE)
    assert view.log_loss()
    history = plots.plot_history(view)
    assert history.axes[0].get_yscale() == "log"
    slices = _texts(plots.plot_slices(view))
    assert {"linear", "tree", "16", "64", "256"} <= slices
    on_linear = sum(1 for t in trials.trials if t["params"]["model"] == 0)
    assert f"depth ({on_linear} of 40 inactive)" in slices
    parallel = _texts(plots.plot_parallel(view))
    assert {"inactive", "linear", "tree"} <= parallel
    assert "parameter importance" in _texts(plots.plot_importance(view))
    contour = plots.plot_contour(view, "lr", "batch")
    assert [t.get_text() for t in contour.axes[0].get_yticklabels()] == ["16", "64", "256"]
    edf = plots.plot_edf(view)
    assert edf.axes[0].get_xscale() == "log"


def test_labels_with_mathtext_syntax_are_drawn_as_written(tmp_path):
    """Labels and options holding "$", "^", "\\": every plot is drawn, and the SVG text (fonts as
    text) holds them as written, not as mathtext (which raised ParseSyntaxException)."""
    import matplotlib

    from hyperdist.views import ExperimentView, plots

    space = {"a": hp.uniform("cost $x^", 0, 1), "b": hp.choice("b_$\\frac", ["$a$b$", "opt_{1}^", "\\"]),
             "c": hp.loguniform("c", -3, 0)}
    trials = Trials()
    fmin(lambda c: c["a"] + c["c"] + (c["b"] == "\\"), space, algo=rand.suggest, max_evals=20, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(0))
    view = ExperimentView.from_trials(trials, space)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        paths = plots.plot_all(view, tmp_path)
        contour = plots.plot_contour(view, "cost $x^", "b_$\\frac")
        contour.savefig(tmp_path / "pair.svg")
    assert {p.name for p in paths} >= {f"{n}.svg" for n in ("history", "slices", "parallel", "importance", "contour")}
    svg = "".join(p.read_text() for p in tmp_path.glob("*.svg"))
    for text in ("cost $x^", "b_$\\frac", "$a$b$", "opt_{1}^", "loss over cost $x^ and b_$\\frac"):
        assert text in svg, text


def test_short_log_ranges_get_few_round_labels():
    from hyperdist.views.plots import _pyplot, readable_log

    fig, ax = _pyplot().subplots()
    ax.plot([0.21, 0.9], [1, 2])
    readable_log(ax, "x")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) <= 5 and all(len(text) <= 5 for text in labels)
    assert not [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]


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


def test_report_is_one_self_contained_file(experiment, tmp_path):
    """Its data, every trial's detail, plotly.js and the page script are inline; the browser test
    (test_dashboard_browser.py) draws it offline."""
    report = tmp_path / "report.html"
    _cli(experiment, "report", "views", "--out", str(report))
    text = report.read_text()
    assert " src=" not in text and "<link rel='stylesheet'" not in text and "plotly.js v" in text
    embedded = json.loads(text.split("window.HD_EMBED = ", 1)[1].split(";</script>", 1)[0])
    history = experiment.history("views")
    assert set(embedded["details"]) == {str(d["tid"]) for d in history}
    best = min((d for d in history if d["state"] == DONE), key=lambda d: d["result"]["loss"])
    assert embedded["experiment"]["summary"]["best_loss"] == pytest.approx(best["result"]["loss"])
    assert len(embedded["contours"]) == len(embedded["experiment"]["pairs"]) >= 1


def test_long_labels_and_options_are_cut_where_they_are_drawn(tmp_path):
    """A 5 000-character label once took a report minutes to lay out; drawn labels are bounded."""
    from hyperdist import Trials, fmin, hp, tpe
    from hyperdist.space.compiled import compile_space
    from hyperdist.views.data import ExperimentView, short
    from hyperdist.views.figures import all_figures

    label = "L" * 5000
    space = {label: hp.uniform(label, 0, 1), "c": hp.choice("c", ["a" * 3000, "b"])}
    trials = Trials()
    fmin(lambda cfg: cfg[label], space, algo=tpe.suggest, max_evals=6, trials=trials, show_progressbar=False)
    view = ExperimentView.from_trials(trials, compile_space(space))
    text = json.dumps(all_figures(view), ensure_ascii=False)
    assert label not in text and short(label) in text and "a" * 3000 not in text


def test_importance_ranks_like_scipy():
    from scipy.stats import rankdata as scipy_rankdata

    from hyperdist.views.importance import rankdata

    rng = np.random.default_rng(5)
    for values in (rng.normal(size=50), rng.integers(0, 5, size=40).astype(float), np.array([2.0]), np.array([])):
        assert np.allclose(rankdata(values), scipy_rankdata(values))


def test_a_space_of_many_parameters_draws_the_most_important_and_says_so():
    """200 parameters: the per-parameter views draw 30 (the ones that matter first), so a plot of a
    huge space takes seconds and stays readable, and the titles say what was left out."""
    from hyperdist.views import ExperimentView, figures, plots

    space = {f"p{i:03d}": hp.uniform(f"p{i:03d}", 0, 1) for i in range(200)}
    trials = Trials()
    fmin(lambda c: 10 * c["p150"] + c["p007"] + 0.01 * c["p000"], space, algo=rand.suggest, max_evals=30,
         trials=trials, show_progressbar=False, rstate=np.random.default_rng(0))
    view = ExperimentView.from_trials(trials, space)
    drawn = [view.space.labels[j] for j in view.drawn()]
    assert len(drawn) == 30 and "p150" in drawn and len(view.slices()) == 30 and len(view.parallel()["dims"]) == 30
    assert "30 of 200 parameters: the most important" in view.drawn_note()
    assert "30 of 200" in figures.slices(view)["layout"]["title"]["text"]
    assert len(figures.importance(view)["data"][0]["y"]) == 30
    assert "30 of 200" in plots.plot_slices(view)._suptitle.get_text()
