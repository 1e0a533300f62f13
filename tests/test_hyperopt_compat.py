"""Differential tests: the same inputs given to Hyperopt (the real package) and to hyperdist, compared.

Each scenario is written once against a library module (`hyperopt` or `hyperdist`), run on both, and
the observable outcomes compared: space_eval values, Trials attributes and lengths, how many times
the objective ran under points_to_evaluate / max_evals / early stopping, which exceptions come out.
Random streams differ between the two, so no scenario depends on which points are suggested; the
distributions of sampled spaces are compared statistically instead.
"""

import importlib
import logging
import math
import pickle
import warnings

import numpy as np
import pytest
from scipy import stats

ho = pytest.importorskip("hyperopt")
import hyperopt.early_stop  # noqa: E402
import hyperopt.exceptions  # noqa: E402
import hyperopt.pyll.stochastic  # noqa: E402,F401

import hyperdist as hd  # noqa: E402
import hyperdist.exceptions  # noqa: E402
import hyperdist.pyll.stochastic  # noqa: E402

logging.getLogger("hyperopt").setLevel(logging.CRITICAL)
LIBS = pytest.mark.parametrize("lib", [ho, hd], ids=["hyperopt", "hyperdist"])


def run(lib, fn, space, **kwargs):
    kwargs.setdefault("show_progressbar", False)
    kwargs.setdefault("rstate", np.random.default_rng(0))
    kwargs.setdefault("algo", lib.rand.suggest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lib.fmin(fn, space, **kwargs)


def both(scenario):
    """The scenario's outcome on Hyperopt and on hyperdist."""
    return scenario(ho), scenario(hd)


def same(a, b) -> bool:
    """Equal as values: numbers within 1e-12 (relative), containers element by element."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return bool(a) == bool(b)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-300)
    return a == b


# --- spaces: each written once, built with either library's hp and scope ------------------------------

def landing(hp, scope):  # Hyperopt's README example
    return hp.choice("a", [("case 1", 1 + hp.lognormal("c1", 0, 1)), ("case 2", hp.uniform("c2", -10, 10))])


def operators(hp, scope):
    x, y = hp.uniform("x", 1, 5), hp.normal("y", 0, 1)
    return {"add": x + y, "radd": 3 + x, "sub": x - y, "rsub": 10 - x, "mul": 2 * x * y, "div": x / 2,
            "rdiv": 1 / x, "floordiv": x // 2, "rfloordiv": 7 // x, "pow": x ** 2, "rpow": 2 ** x, "neg": -y,
            "nested": (x + 1) * (y - 1) / (x + y + 10), "gt": x > 3, "le": y <= 0}


def helpers(hp, scope):
    u = hp.uniform("u", 0.5, 2)
    return {"int": scope.int(hp.quniform("q", 0, 10, 1)), "float": scope.float(hp.randint("r", 5)),
            "exp": scope.exp(u), "log": scope.log(u), "sqrt": scope.sqrt(u), "sin": scope.sin(u),
            "cos": scope.cos(u), "tan": scope.tan(u), "minimum": scope.minimum(u, 1), "maximum": scope.maximum(u, 1),
            "max": scope.max(u, 1.2), "min": scope.min(u, 1.2), "pow": scope.pow(u, 3),
            "switch": scope.switch(hp.randint("s", 3), "a", "b", "c"),
            "getitem": hp.choice("t", [(1, 2), (3, 4)])[1]}


def conditional(hp, scope):
    return {"lr": scope.exp(hp.uniform("log_lr", -5, 0)),
            "model": hp.choice("m", [{"kind": "svm", "C": 10 ** hp.uniform("logC", -2, 2)},
                                     {"kind": "tree", "depth": scope.int(hp.quniform("depth", 2, 10, 1)) + 1}])}


SPACES = [landing, operators, helpers, conditional]


def assignments(build, n: int = 8):
    """n assignments of the space's parameters (choices as option indices), drawn by hyperdist."""
    compiled = hd.compile_space(build(hd.hp, hd.pyll.scope))
    rows = compiled.sample(np.random.default_rng(1), n)
    return [compiled.to_assignment(row) for row in rows]


@pytest.mark.parametrize("build", SPACES, ids=lambda b: b.__name__)
def test_space_eval_of_expressions_matches_hyperopt(build):
    hd_space, ho_space = build(hd.hp, hd.pyll.scope), build(ho.hp, ho.pyll.scope)
    for point in assignments(build):
        ours, theirs = hd.space_eval(hd_space, point), ho.space_eval(ho_space, point)
        assert same(ours, theirs), (point, ours, theirs)


@pytest.mark.parametrize("build", SPACES, ids=lambda b: b.__name__)
def test_expressions_travel_as_json_and_evaluate_the_same(build):
    import json

    compiled = hd.compile_space(build(hd.hp, hd.pyll.scope))
    text = json.dumps(compiled.to_json())
    assert "$op" in text or build is landing
    back = hd.space_from_json(json.loads(text))
    assert back.labels == compiled.labels and back.hash == compiled.hash
    for point in assignments(build):
        assert same(back.eval(point), ho.space_eval(build(ho.hp, ho.pyll.scope), point))


def test_sampled_spaces_have_hyperopt_distributions():
    def space(hp, scope):
        return {"u": hp.uniform("u", -2, 3), "lu": hp.loguniform("lu", -3, 1), "qu": hp.quniform("qu", 0, 20, 4),
                "n": hp.normal("n", 1, 2), "ln": hp.lognormal("ln", 0, 0.5), "qln": hp.qlognormal("qln", 1, 1, 2),
                "ri": hp.randint("ri", 2, 7), "c": hp.choice("c", ["a", "b", "c"]),
                "expr": 1 + scope.exp(hp.uniform("e", 0, 1)) * 2}

    n = 1500
    ours = [hd.pyll.stochastic.sample(space(hd.hp, hd.pyll.scope), rng=np.random.default_rng(i)) for i in range(n)]
    theirs = [ho.pyll.stochastic.sample(space(ho.hp, ho.pyll.scope), rng=np.random.default_rng(10**6 + i))
              for i in range(n)]
    for key in ("u", "lu", "n", "ln", "expr"):
        p = stats.ks_2samp([d[key] for d in ours], [d[key] for d in theirs]).pvalue
        assert p > 1e-3, (key, p)
    for key in ("qu", "qln", "ri", "c"):
        a, b = [d[key] for d in ours], [d[key] for d in theirs]
        support = sorted(set(a) | set(b), key=str)
        assert set(a) <= set(b) | {v for v in support if b.count(v) == 0 and a.count(v) < 10}, key
        table = [[a.count(v) for v in support], [b.count(v) for v in support]]
        kept = [i for i in range(len(support)) if table[0][i] + table[1][i] >= 10]
        p = stats.chi2_contingency([[row[i] for i in kept] for row in table]).pvalue
        assert p > 1e-3, (key, p)


# --- Trials and fmin counts ----------------------------------------------------------------------------

def _calls_and_trials(lib, objective, **kwargs):
    calls = []

    def fn(x):
        calls.append(x)
        return objective(len(calls))

    trials = kwargs.pop("trials", lib.Trials())  # trials=None: fmin makes its own, which stays out of reach
    try:
        run(lib, fn, lib.hp.uniform("x", 0, 1), trials=trials, **kwargs)
        raised = None
    except Exception as exc:  # the scenario records which exception, compared below
        raised = type(exc).__name__
    if trials is None:
        return len(calls), None, None, None, raised, None
    return len(calls), len(trials), len(trials.trials), [t["state"] for t in trials.trials], raised, trials


def _flaky(i):
    if i % 3 == 0:
        raise RuntimeError(f"call {i}")
    return float(i)


def test_error_trials_are_left_out_as_in_hyperopt():
    theirs, ours = both(lambda lib: _calls_and_trials(lib, _flaky, max_evals=10, catch_eval_exceptions=True)[:5])
    assert ours == theirs and ours[:3] == (10, 7, 7)
    theirs, ours = both(lambda lib: _calls_and_trials(lib, _flaky, max_evals=10)[:5])
    assert ours == theirs and ours[4] == "RuntimeError" and ours[:3] == (3, 2, 2)
    (*_, ho_trials), (*_, hd_trials) = both(lambda lib: _calls_and_trials(lib, _flaky, max_evals=10,
                                                                            catch_eval_exceptions=True))
    assert len(hd_trials.all_trials) == len(ho_trials._dynamic_trials) == 10
    assert hd_trials.losses() == ho_trials.losses() and hd_trials.statuses() == ho_trials.statuses()
    assert hd_trials.tids == ho_trials.tids and hd_trials.argmin.keys() == ho_trials.argmin.keys()
    assert set(ho_trials.trials[0]) <= set(hd_trials.trials[0])
    assert set(ho_trials.trials[0]["misc"]) - {"cmd", "workdir"} <= set(hd_trials.trials[0]["misc"])


def test_fail_status_results_stay_in_trials_as_in_hyperopt():
    def fail_odd(i):
        return {"status": "fail"} if i % 2 else {"status": "ok", "loss": float(i)}

    theirs, ours = both(lambda lib: _calls_and_trials(lib, fail_odd, max_evals=6)[:5])
    assert ours == theirs and ours[:3] == (6, 6, 6)


def test_every_trial_failing_raises_the_same_way():
    theirs, ours = both(lambda lib: _calls_and_trials(lib, lambda i: 1 / 0, max_evals=4, catch_eval_exceptions=True)[:3])
    assert ours == theirs == (4, 0, 0)
    (*_, ho_trials), (*_, hd_trials) = both(lambda lib: _calls_and_trials(lib, lambda i: {"status": "fail"},
                                                                            max_evals=3))
    for trials in (ho_trials, hd_trials):
        with pytest.raises(ho.exceptions.AllTrialsFailed if trials is ho_trials else hd.exceptions.AllTrialsFailed):
            trials.best_trial


@pytest.mark.parametrize("points, max_evals", [([{"x": 0.2}, {"x": 0.4}], 5), ([{"x": 0.3}], 1), ([], 3)])
def test_points_to_evaluate_count_as_in_hyperopt(points, max_evals):
    theirs, ours = both(lambda lib: _calls_and_trials(lib, float, max_evals=max_evals, trials=None,
                                                      points_to_evaluate=points)[:5])
    assert ours == theirs and ours[0] == len(points) + max_evals
    theirs, ours = both(lambda lib: _calls_and_trials(lib, float, max_evals=max_evals,
                                                      trials=generate(lib)(points))[:5])
    assert ours == theirs and ours[0] == len(points) + max_evals


def generate(lib):
    """`generate_trials_to_calculate` from the library's fmin module, where Hyperopt keeps it."""
    return importlib.import_module(f"{lib.__name__}.fmin").generate_trials_to_calculate


def test_out_of_range_points_are_evaluated_as_in_hyperopt():
    def scenario(lib):
        seen = []
        run(lib, lambda x: seen.append(x) or x, lib.hp.uniform("x", 0, 1), max_evals=1,
            points_to_evaluate=[{"x": 7.5}, {"x": -2.0}])
        return seen[:2]

    theirs, ours = both(scenario)
    assert ours == theirs == [7.5, -2.0]


def test_points_to_evaluate_are_ignored_with_given_trials_as_in_hyperopt():
    theirs, ours = both(lambda lib: _calls_and_trials(lib, float, max_evals=3, trials=lib.Trials(),
                                                      points_to_evaluate=[{"x": 0.5}])[:5])
    assert ours == theirs and ours[0] == 3


@pytest.mark.parametrize("losses, n, percent", [
    ([1.0] * 50, 5, 0.0), ([5, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 3, 0.0), ([1.0] * 50, 1, 0.0),
    ([10, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4, 9.3, 9.2, 9.1, 9.0, 8.9, 8.8] * 3, 4, 5.0),
])
def test_no_progress_loss_stops_where_hyperopt_stops(losses, n, percent):
    theirs, ours = both(lambda lib: _calls_and_trials(
        lib, lambda i: float(losses[i - 1]), max_evals=len(losses),
        early_stop_fn=(ho.early_stop if lib is ho else hd).no_progress_loss(n, percent))[:5])
    assert ours == theirs


@pytest.mark.parametrize("threshold", [2.0, 3.0, -1.0])
def test_loss_threshold_stops_where_hyperopt_stops(threshold):
    theirs, ours = both(lambda lib: _calls_and_trials(lib, lambda i: 6.0 - i, max_evals=10,
                                                      loss_threshold=threshold)[:5])
    assert ours == theirs


def test_max_evals_counts_the_history_as_in_hyperopt():
    def scenario(lib):
        trials, counts = lib.Trials(), []
        for max_evals in (3, 3, 7, 5, 9):
            counts.append(_calls_and_trials(lib, float, max_evals=max_evals, trials=trials)[:3])
        return counts

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.parametrize("kwargs", [
    {"loss_threshold": "a"}, {"loss_threshold": True}, {"timeout": True}, {"timeout": "1"}, {"timeout": -1},
    {"timeout": 0},
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs):
    theirs, ours = both(lambda lib: _calls_and_trials(lib, float, max_evals=3, **kwargs)[:3])
    assert ours == theirs == (0, 0, 0)
    messages = []
    for lib in (ho, hd):
        with pytest.raises(Exception) as raised:
            run(lib, float, lib.hp.uniform("x", 0, 1), max_evals=3, **kwargs)
        messages.append(str(raised.value))
    assert messages[0] == messages[1] and next(iter(kwargs)) in messages[1]
    assert isinstance(raised.value, hd.HyperdistError)


def test_annotated_space_as_in_hyperopt():
    def scenario(lib):
        seen = []

        def objective(x: lib.hp.uniform("x", -1, 1), y: lib.hp.choice("y", ["a", "b"])):
            seen.append((type(x), y in ("a", "b")))
            return x ** 2

        best = run(lib, objective, "annotated", max_evals=5)
        return sorted(best), seen[0], len(seen)

    theirs, ours = both(scenario)
    assert ours == theirs


def test_bad_annotation_raises_invalid_annotated_parameter():
    def objective(x: int):
        return x

    for lib, exceptions in ((ho, ho.exceptions), (hd, hd.exceptions)):
        with pytest.raises(exceptions.InvalidAnnotatedParameter):
            run(lib, objective, "annotated", max_evals=2)


def test_exception_names_and_when_they_are_raised():
    theirs = {n for n in dir(ho.exceptions) if isinstance(getattr(ho.exceptions, n), type)}
    assert theirs <= set(dir(hd.exceptions))
    for name in theirs:
        assert issubclass(getattr(hd.exceptions, name), hd.HyperdistError)
    for lib, exceptions in ((ho, ho.exceptions), (hd, hd.exceptions)):
        with pytest.raises(exceptions.DuplicateLabel):
            run(lib, float, [lib.hp.uniform("x", 0, 1), lib.hp.normal("x", 0, 1)], max_evals=1)
        with pytest.raises(exceptions.InvalidLoss):
            run(lib, lambda x: {"status": "ok"}, lib.hp.uniform("x", 0, 1), max_evals=1)
        with pytest.raises(exceptions.InvalidResultStatus):
            run(lib, lambda x: {"status": "great", "loss": 1.0}, lib.hp.uniform("x", 0, 1), max_evals=1)
    with pytest.raises(hd.SpaceError):  # caught as before by code that knows hyperdist's errors
        hd.compile_space([hd.hp.uniform("x", 0, 1), hd.hp.normal("x", 0, 1)])


def test_attachments_as_in_hyperopt():
    def scenario(lib):
        trials = lib.Trials()
        run(lib, lambda x: {"loss": x, "status": "ok", "attachments": {"blob": pickle.dumps(round(x, 3))}},
            lib.hp.uniform("x", 0, 1), max_evals=3, trials=trials)
        trial = trials.trials[1]
        stored = trials.trial_attachments(trial)
        stored["extra"] = b"x"
        return ("blob" in stored, pickle.loads(stored["blob"]) == round(trial["result"]["loss"], 3),
                "attachments" in trial["result"], sorted(k.split("::")[2] for k in trials.attachments))

    theirs, ours = both(scenario)
    assert ours == theirs == (True, True, False, ["blob", "blob", "blob", "extra"])


def test_return_argmin_false_builds_the_point_as_hyperopt():
    def scenario(lib):
        space = landing(lib.hp, lib.pyll.scope)
        trials = lib.Trials()
        best = run(lib, lambda c: c[1] if c[0] == "case 1" else 100.0, space, max_evals=20, trials=trials,
                   return_argmin=False)
        return best, lib.space_eval(space, trials.argmin)

    (ho_best, ho_check), (hd_best, hd_check) = both(scenario)
    assert same(ho_best, ho_check) and same(hd_best, hd_check) and hd_best[0] == ho_best[0] == "case 1"


@pytest.mark.parametrize("name", ["main_plot_history", "main_plot_histogram", "main_plot_vars"])
def test_plots_draw_what_hyperopt_draws(name, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from hyperopt import plotting as ho_plotting

    from hyperdist import plotting as hd_plotting

    def scenario(lib):
        trials = lib.Trials()
        space = {"x": lib.hp.uniform("x", -3, 3), "m": lib.hp.choice("m", [0, {"d": lib.hp.quniform("d", 1, 9, 1)}])}
        run(lib, lambda c: c["x"] ** 2, space, max_evals=25, trials=trials)
        plt.figure()
        (ho_plotting if lib is ho else hd_plotting).__dict__[name](trials, do_show=False)
        fig = plt.gcf()
        drawn = [(ax.get_title(), len(ax.collections), len(ax.patches), len(ax.lines)) for ax in fig.axes]
        plt.close("all")
        return sorted(drawn)

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.slow
def test_mongotrials_leaves_error_trials_out_as_trials_does(mongo_url, db_name):
    """Hyperopt's MongoTrials view has the same rule as its Trials: trials that raised are not listed."""
    import objectives
    from harness import start_worker, url_with_db, worker_env

    worker = start_worker(mongo_url, db_name, "errs", worker_env())
    try:
        trials = hd.MongoTrials(url_with_db(mongo_url, db_name),
                                exp_key="errs", db=db_name, workers=1)
        with pytest.raises(hd.exceptions.AllTrialsFailed):
            run(hd, objectives.raises, objectives.space, max_evals=3, trials=trials)
        assert worker.wait(60) == 0
    finally:
        worker.kill()
        worker.wait(30)
    assert len(trials) == 0 and trials.trials == [] and len(trials.all_trials) == 3
    assert all(t["error"]["message"] == "always broken" for t in trials.all_trials)
    assert trials.count_by_state() == {0: 0, 1: 0, 2: 0, 3: 3}


@pytest.mark.slow
def test_no_progress_loss_stops_a_distributed_search(mongo_url, db_name):
    """With MongoTrials the rule is called by the coordinator, which offers `best_trial` only."""
    import objectives
    from harness import start_worker, url_with_db, worker_env

    worker = start_worker(mongo_url, db_name, "stops", worker_env())
    try:
        trials = hd.MongoTrials(url_with_db(mongo_url, db_name),
                                exp_key="stops", db=db_name, workers=1)
        run(hd, objectives.constant, objectives.space, max_evals=500, trials=trials,
            early_stop_fn=hd.no_progress_loss(3))
    finally:
        worker.kill()
        worker.wait(30)
    assert 1 <= len(trials) < 500 and trials.best_trial["result"]["loss"] == 1.0


def test_vals_and_idxs_of_a_conditional_space_have_hyperopt_shape():
    def scenario(lib):
        trials = lib.Trials()
        run(lib, lambda c: 1.0, conditional(lib.hp, lib.pyll.scope), max_evals=12, trials=trials)
        vals, idxs = trials.vals, trials.idxs
        active = [sorted(k for k, v in t["misc"]["vals"].items() if v) for t in trials.trials]
        consistent = all(("logC" in a) != ("depth" in a) and ("logC" in a) == (trials.trials[i]["misc"]["vals"]["m"] == [0])
                         for i, a in enumerate(active))
        return (sorted(vals), sorted(idxs), [len(vals[k]) == len(idxs[k]) for k in sorted(vals)], len(vals["m"]),
                sorted(trials.trials[0]["misc"]["vals"]), consistent, trials.argmin.keys() <= set(vals))

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.slow
def test_annotated_space_with_mongotrials_is_refused_with_the_reason(mongo_url, db_name):
    def objective(x: hd.hp.uniform("x", 0, 1)):
        return x

    from harness import url_with_db

    trials = hd.MongoTrials(url_with_db(mongo_url, db_name),
                            exp_key="annot", db=db_name)
    with pytest.raises(hd.HyperdistError, match='space="annotated" works with Trials only'):
        run(hd, objective, "annotated", max_evals=2, trials=trials)


def test_sample_takes_the_rng_kinds_tutorials_pass():
    """A Generator (Hyperopt >= 0.2.7), a RandomState (older tutorials: each call draws anew from it)
    and an int seed; anything else is refused naming what is expected."""
    space = {"x": hd.hp.uniform("x", 0, 1), "c": hd.hp.choice("c", ["a", "b"])}
    sample = hd.pyll.stochastic.sample
    assert sample(space, rng=np.random.default_rng(3)) == sample(space, rng=np.random.default_rng(3))
    state = np.random.RandomState(0)
    first, second = sample(space, rng=state), sample(space, rng=state)
    assert first != second and first == sample(space, rng=np.random.RandomState(0))
    assert sample(space, rng=7) == sample(space, rng=7)
    with pytest.raises(hd.HyperdistError, match="RandomState"):
        sample(space, rng="seed")
