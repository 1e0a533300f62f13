"""fmin and Trials: Hyperopt's tutorial examples unchanged except the import, and the documented keywords."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from hyperdist import (
    STATUS_FAIL, STATUS_OK, AllTrialsFailed, HyperdistError, Trials, fmin, generate_trials_to_calculate, hp,
    no_progress_loss, rand, space_eval, tpe,
)
from hyperdist.exceptions import InvalidLoss, InvalidResultStatus


def quiet(*args, **kwargs):
    kwargs.setdefault("show_progressbar", False)
    return fmin(*args, **kwargs)


def test_tutorial_parabola_finds_half():
    best = quiet(lambda x: x ** 2 - x + 1, hp.uniform("x", -10, 10), algo=tpe.suggest, max_evals=200,
                 rstate=np.random.default_rng(1))
    assert abs(best["x"] - 0.5) < 0.05


def test_dict_space_and_trials_api():
    trials = Trials()
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    best = quiet(lambda c: {"loss": c["x"] ** 2 + c["y"] ** 2, "status": STATUS_OK, "extra": "kept"}, space,
                 algo=tpe.suggest, max_evals=60, trials=trials, rstate=2)
    assert len(trials) == 60 and trials.tids == list(range(60))
    assert set(trials.statuses()) == {STATUS_OK} and len(trials.losses()) == 60
    assert trials.best_trial["result"]["loss"] == min(trials.losses())
    assert best == trials.argmin and trials.results[0]["extra"] == "kept"
    assert len(trials.vals["x"]) == 60 and trials.idxs["x"] == list(range(60))
    assert best["x"] ** 2 + best["y"] ** 2 < 1.0


def test_nested_choice_and_tuple_space():
    space = {
        "lr": hp.loguniform("lr", -10, 0),
        "dropout": hp.uniform("dropout", 0, 1),
        "layers": hp.choice("layers", [{"n": 1}, {"n": 2, "units2": hp.quniform("units2", 16, 512, 16)}]),
    }
    seen = []

    def objective(cfg):
        seen.append(cfg)
        bonus = 0.0 if cfg["layers"]["n"] == 2 and cfg["layers"]["units2"] == 128 else 0.3
        return abs(math.log(cfg["lr"]) + 5) / 10 + abs(cfg["dropout"] - 0.2) + bonus

    trials = Trials()
    best = quiet(objective, space, algo=tpe.suggest, max_evals=80, trials=trials, rstate=3)
    assert all(("units2" in c["layers"]) == (c["layers"]["n"] == 2) for c in seen)
    assert space_eval(space, best)["layers"]["n"] in (1, 2)
    tuple_space = (hp.uniform("x", 0, 1), hp.uniform("y", 0, 1), hp.choice("z", ["tanh", "relu"]))
    best = fmin(lambda a: a[0] + a[1] + (a[2] == "tanh"), tuple_space, tpe.suggest, 50, show_progressbar=False)
    assert best["z"] == 1


@pytest.mark.parametrize("bad, reason", [(float("nan"), "nan"), (float("inf"), "inf")])
def test_non_finite_losses_become_error_trials(bad, reason):
    calls = []

    def objective(cfg):
        calls.append(cfg)
        return bad if len(calls) % 2 else 1.0

    trials = Trials()
    quiet(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=6, trials=trials, rstate=0)
    failed = [t for t in trials.all_trials if t["result"]["status"] == STATUS_FAIL]
    assert len(calls) == 6 and len(failed) == 3 and reason in failed[0]["error"]["message"]
    assert failed[0]["result"]["failure"] == failed[0]["error"]["message"]
    assert len(trials) == 3 and trials.best_trial["result"]["loss"] == 1.0  # the search went on


@pytest.mark.parametrize("bad, kind", [
    (None, InvalidResultStatus), ("0.3", InvalidResultStatus), ({"status": "done"}, InvalidResultStatus),
    ({"status": STATUS_OK}, InvalidLoss), ({"status": STATUS_OK, "loss": "low"}, InvalidLoss),
])
def test_unusable_results_raise_as_in_hyperopt_unless_caught(bad, kind):
    trials = Trials()
    with pytest.raises(kind) as raised:
        quiet(lambda cfg: bad, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, trials=trials)
    assert repr(bad)[:10] in str(raised.value) and len(trials.all_trials) == 1 and len(trials) == 0
    trials = Trials()
    with pytest.raises(AllTrialsFailed):
        quiet(lambda cfg: bad, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, trials=trials,
              catch_eval_exceptions=True)
    assert len(trials.all_trials) == 3 and trials.all_trials[0]["error"]["type"] in ("InvalidResult", "InvalidLoss")


def test_exceptions_are_recorded_and_reraised_unless_caught():
    def boom(cfg):
        raise RuntimeError("kaboom")

    trials = Trials()
    with pytest.raises(RuntimeError, match="kaboom"):
        quiet(boom, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, trials=trials)
    error = trials.all_trials[0]["error"]
    assert error["type"] == "RuntimeError" and error["message"] == "kaboom" and "in boom" in error["traceback"]
    assert len(trials) == 0 and trials.trials == [] and trials.count_by_state()[3] == 1
    trials = Trials()
    with pytest.raises(AllTrialsFailed, match="no evaluated trials"):
        quiet(boom, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, trials=trials, catch_eval_exceptions=True)
    assert len(trials) == 0 and len(trials.all_trials) == 3
    assert all(t["error"]["message"] == "kaboom" for t in trials.all_trials)


def test_max_evals_counts_history_and_seed_reproduces():
    trials = Trials()
    quiet(lambda x: x, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=10, trials=trials, rstate=5)
    assert len(trials) == 10
    quiet(lambda x: x, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=20, trials=trials, rstate=5)
    assert len(trials) == 20 and trials.tids == list(range(20))
    space = {"x": hp.uniform("x", 0, 1), "c": hp.choice("c", [0, {"q": hp.quniform("q", 0, 9, 3)}])}
    runs = []
    for rstate in (7, 7, np.random.default_rng(9), np.random.default_rng(9), 8):
        trials = Trials()
        quiet(lambda c: c["x"], space, algo=tpe.suggest, max_evals=30, trials=trials, rstate=rstate)
        runs.append(trials.vals)
    assert runs[0] == runs[1] and runs[2] == runs[3]
    assert runs[0] != runs[4] and runs[0] != runs[2]


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_max_evals_is_refused_before_running(value):
    calls = []
    with pytest.raises(HyperdistError, match="max_evals"):
        quiet(lambda x: calls.append(x) or x, hp.uniform("x", 0, 1), max_evals=value)
    assert calls == []


def test_stop_rules():
    trials = Trials()
    quiet(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1000, trials=trials, loss_threshold=0.2,
          rstate=1)
    assert trials.best_trial["result"]["loss"] <= 0.2 and len(trials) < 1000
    trials = Trials()
    quiet(lambda x: 1.0, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1000, trials=trials,
          early_stop_fn=no_progress_loss(5))
    assert len(trials) == 5  # Hyperopt's count: the first trial already counts as one without progress
    trials = Trials()
    import time
    quiet(lambda x: time.sleep(0.05) or x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1000, trials=trials,
          timeout=0.5)
    assert 3 <= len(trials) <= 15


def test_points_to_evaluate_run_first_and_return_argmin_false():
    space = {"x": hp.uniform("x", -1, 1), "c": hp.choice("c", ["a", "b"])}
    calls = []

    def objective(c):
        calls.append(c)
        return abs(c["x"]) + (c["c"] == "a")

    best = quiet(objective, space, algo=tpe.suggest, max_evals=5, points_to_evaluate=[{"x": 0.0, "c": 1}],
                 return_argmin=False)
    assert calls[0] == {"x": 0.0, "c": "b"} and len(calls) == 6  # the point, then max_evals more
    assert best == {"x": 0.0, "c": "b"}
    trials = generate_trials_to_calculate([{"x": 5.0, "c": 0}])  # out of range: evaluated, as in Hyperopt
    quiet(objective, space, algo=tpe.suggest, max_evals=2, trials=trials)
    assert len(trials) == 3 and trials.trials[0]["params"] == {"x": 5.0, "c": 0}
    with pytest.warns(UserWarning, match="points_to_evaluate is ignored"):
        quiet(objective, space, algo=tpe.suggest, max_evals=1, trials=Trials(), points_to_evaluate=[{"x": 0.0, "c": 1}])
    with pytest.raises(HyperdistError, match="'c'"):  # no such option: refused before anything runs
        quiet(objective, space, max_evals=1, points_to_evaluate=[{"x": 0.0, "c": 2}])


def test_trials_save_file_resumes(tmp_path):
    path = str(tmp_path / "trials.json")
    quiet(lambda x: x ** 2, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=8, trials_save_file=path)
    quiet(lambda x: x ** 2, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=12, trials_save_file=path)
    from hyperdist.local.trials import Trials as T
    assert len(T.load(path)) == 12
    with pytest.raises(HyperdistError, match="different search space"):
        quiet(lambda x: x, hp.uniform("x", -2, 2), max_evals=14, trials_save_file=path)


def test_partial_tpe_keywords():
    algo = functools.partial(tpe.suggest, n_startup_jobs=5, n_EI_candidates=12, gamma=0.3, prior_weight=0.8)
    trials = Trials()
    quiet(lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), algo=algo, max_evals=30, trials=trials, rstate=4)
    assert abs(trials.argmin["x"] - 0.3) < 0.1
    with pytest.raises(ValueError, match="gamma"):
        quiet(lambda x: x, hp.uniform("x", 0, 1), algo=functools.partial(tpe.suggest, gamma=2), max_evals=3)


def test_progressbar_is_not_broken_by_objective_output():
    import io

    from hyperdist.local.progress import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(10, stream=out, force=True)
    bar.update(3, 0.5, (2, 1, 0))
    bar.clear()
    out.write("objective says hi\n")
    bar.draw()
    bar.close()
    text = out.getvalue()
    assert "\r\x1b[Kobjective says hi\n" in text and "best loss: 0.5" in text and "3/10" in text
    assert "2 ok, 1 failed, 0 pruned" in text


def test_incremental_counts_and_best_agree_with_a_recount():
    rng = np.random.default_rng(3)
    trials = Trials()
    for tid in range(300):
        trials.insert(tid, {"x": float(rng.random())}, ["x"])
        if rng.random() < 0.1:
            continue  # stays new
        trials.start(tid)
        kind = rng.integers(5)
        if kind == 0:
            trials.finish(tid, {"status": "fail"}, {"type": "RuntimeError", "message": "boom"})
        elif kind == 1:
            trials.finish(tid, {"status": "fail"})
        elif kind == 2 and tid % 7:
            trials.finish(tid, {"status": "ok", "loss": float(np.round(rng.random(), 1))})
        elif kind == 3:
            trials.finish(tid, {"status": "fail", "loss": float("nan")}, {"type": "InvalidLoss", "message": "nan"})
    recount = {s: sum(t["state"] == s for t in trials.all_trials) for s in range(4)}
    assert trials.count_by_state() == recount
    assert trials.count_by_state_unsynced([0, 1]) == recount[0] + recount[1]
    assert trials.count_by_state_synced(3) == 0 and len(trials) == 300 - recount[3]
    ok = [t for t in trials.trials if t["result"]["status"] == STATUS_OK]
    assert trials.best_trial is min(ok, key=lambda t: t["result"]["loss"])  # the first of equal losses
    assert trials.n_finished == recount[2] + recount[3] and trials.new_trial_ids(2) == [300, 301]
    assert trials.specs == [None] * len(trials) and trials.idxs_vals == (trials.idxs, trials.vals)
    ok_count = sum(t["state"] == 2 and t["result"]["status"] == STATUS_OK for t in trials.all_trials)
    assert trials.outcome_counts == (ok_count, trials.n_finished - ok_count, 0)


def test_pyll_ctrl_objectives_are_refused_with_the_reason():
    with pytest.raises(HyperdistError, match="pass_expr_memo_ctrl is not supported"):
        quiet(lambda expr, memo, ctrl: 0.0, hp.uniform("x", 0, 1), max_evals=2, pass_expr_memo_ctrl=True)


def test_annotated_space_checks_every_argument_and_allows_a_return_annotation():
    from hyperdist.exceptions import InvalidAnnotatedParameter

    with pytest.raises(InvalidAnnotatedParameter, match="argument 'x' of <lambda> has no annotation"):
        quiet(lambda x: x, "annotated", max_evals=2)
    seen = []

    def objective(x, k):
        seen.append(k)
        return x
    # what `def objective(x: hp.uniform(...), k: hp.choice(...)) -> float` sets without this file's
    # `from __future__ import annotations`
    objective.__annotations__ = {"x": hp.uniform("x", 0, 1), "k": hp.choice("k", ["a", "b"]), "return": float}

    best = quiet(objective, "annotated", max_evals=4)
    assert set(best) == {"x", "k"} and set(seen) <= {"a", "b"} and len(seen) == 4


def test_a_space_without_parameters_evaluates_its_constant():
    seen = []
    assert quiet(lambda c: seen.append(c) or 1.0, {"k": 3, "name": "const"}, max_evals=3) == {}
    assert seen == [{"k": 3, "name": "const"}] * 3


@pytest.mark.parametrize("returned", [0.5, np.float32(0.25), {"loss": 2, "status": "ok", "extra": {"n": np.int64(3)}},
                                      {"status": "fail"}, {"loss": float("nan"), "status": "ok"}, "text",
                                      {"loss": 1.0, "status": "weird"}], ids=repr)
def test_fmin_judges_a_result_as_a_worker_does(returned):
    """One evaluation path: fmin and a worker normalise a return value the same way (a worker then
    also makes it storable, which an in-memory Trials does not need)."""
    from hyperdist.objective.evaluation import run_in_process
    from hyperdist.objective.result import plain

    from hyperdist.errors import AllTrialsFailed

    trials = Trials()
    try:
        fmin(lambda _: returned, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1, trials=trials,
             catch_eval_exceptions=True, show_progressbar=False, rstate=np.random.default_rng(0))
    except AllTrialsFailed:  # no ok trial: fmin has no argmin to return
        pass
    local = trials.all_trials[0]
    worker = run_in_process(lambda _: returned, None, None)
    assert plain(local["result"]) == worker.result
    assert local["error"] == worker.error
