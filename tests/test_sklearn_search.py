"""HyperdistSearchCV: scikit-learn's own estimator checks, the search interface beside GridSearchCV's,
pipelines with step__param names, and a distributed search with real worker processes."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the sklearn extra is not installed: pip install '.[sklearn]'")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from hyperdist import hp  # noqa: E402
from harness import url_with_db  # noqa: E402
from hyperdist.sklearn import HyperdistSearchCV  # noqa: E402
from hyperdist.store import Store  # noqa: E402


@parametrize_with_checks([
    HyperdistSearchCV(Ridge(), {"alpha": hp.loguniform("alpha", -3, 3)}, max_evals=2, cv=2, random_state=0),
    HyperdistSearchCV(RidgeClassifier(), {"alpha": hp.loguniform("alpha", -3, 3)}, max_evals=2, cv=2,
                      random_state=0),
])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _data():
    return make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)


PIPE_SPACE = {
    "svc__C": hp.loguniform("C", -3, 3),
    "kernel": hp.choice("kernel", [{"svc__kernel": "linear"},
                                   {"svc__kernel": "rbf", "svc__gamma": hp.loguniform("gamma", -4, 1)}]),
}


def test_pipeline_search_has_gridsearchcvs_interface():
    X, y = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
    search = HyperdistSearchCV(pipe, PIPE_SPACE, max_evals=12, cv=3, scoring="accuracy", random_state=1,
                               return_train_score=True).fit(X, y)
    grid = GridSearchCV(pipe, {"svc__C": [1.0], "svc__kernel": ["linear"]}, cv=3, scoring="accuracy",
                        return_train_score=True).fit(X, y)
    assert set(search.cv_results_) - {"param_svc__gamma"} == set(grid.cv_results_)
    results = search.cv_results_
    assert len(results["params"]) == 12 and search.n_splits_ == 3
    for p, gamma in zip(results["params"], results["param_svc__gamma"]):
        assert set(p) <= {"svc__C", "svc__kernel", "svc__gamma"}       # choices merged into step__param names
        assert ("svc__gamma" in p) == (p["svc__kernel"] == "rbf") == (gamma is not np.ma.masked)
    best = int(np.argmin(results["rank_test_score"]))
    assert search.best_index_ == best and search.best_params_ == results["params"][best]
    assert search.best_score_ == results["mean_test_score"][best] == max(results["mean_test_score"])
    assert np.allclose(results["mean_test_score"],
                       np.mean([results[f"split{k}_test_score"] for k in range(3)], axis=0))
    assert search.best_estimator_.get_params()["svc__C"] == search.best_params_["svc__C"]
    assert search.predict(X).shape == y.shape and 0 <= search.score(X, y) <= 1
    assert list(search.classes_) == [0, 1] and search.n_features_in_ == 6
    assert len(search.trials_.trials) == 12


def test_multimetric_refit_names_the_metric_and_refit_false_keeps_no_estimator():
    X, y = _data()
    search = HyperdistSearchCV(LogisticRegression(), {"C": hp.loguniform("C", -3, 3)}, max_evals=4, cv=2,
                               scoring=["accuracy", "neg_log_loss"], refit="neg_log_loss", random_state=0).fit(X, y)
    assert search.best_score_ == max(search.cv_results_["mean_test_neg_log_loss"])
    assert "rank_test_accuracy" in search.cv_results_ and search.score(X, y) < 0
    with pytest.raises(ValueError, match="refit must name the one to optimise"):
        HyperdistSearchCV(LogisticRegression(), {"C": hp.uniform("C", 1, 2)}, scoring=["accuracy", "f1"]).fit(X, y)
    lean = HyperdistSearchCV(LogisticRegression(), {"C": hp.uniform("C", 1, 2)}, max_evals=2, cv=2, refit=False)
    lean.fit(X, y)
    assert not hasattr(lean, "best_estimator_") and lean.best_params_["C"] >= 1
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        HyperdistSearchCV(LogisticRegression(), {"nope": hp.uniform("nope", 1, 2)}, max_evals=2).fit(X, y)


def test_a_failing_candidate_is_a_failed_trial_not_a_failed_search():
    X, y = _data()
    space = {"penalty": hp.choice("penalty", ["l2", "bogus"]), "C": hp.uniform("C", 0.5, 2)}
    search = HyperdistSearchCV(LogisticRegression(), space, max_evals=10, cv=2, random_state=3)
    with pytest.warns(Warning):
        search.fit(X, y)
    bad = [i for i, p in enumerate(search.cv_results_["params"]) if p["penalty"] == "bogus"]
    assert bad and all(np.isnan(search.cv_results_["mean_test_score"][i]) for i in bad)
    assert search.best_params_["penalty"] == "l2"
    ranks = search.cv_results_["rank_test_score"]  # NaN scores rank last, tied (as in GridSearchCV)
    assert set(ranks[bad]) == {len(ranks) - len(bad) + 1} and max(np.delete(ranks, bad)) < min(ranks[bad])


@pytest.mark.slow
def test_distributed_search_runs_candidates_on_worker_processes(mongo_url, db_name):
    X, y = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
    url = url_with_db(mongo_url, db_name)
    search = HyperdistSearchCV(pipe, PIPE_SPACE, max_evals=10, cv=KFold(3, shuffle=True, random_state=0),
                               mongo=url, workers=2, random_state=0, exp_key="skl").fit(X, y)
    store = Store(mongo_url, db=db_name)
    docs = store.history("skl")
    assert len(docs) == 10 and all(d["state"] == "DONE" for d in docs)
    owners = {d["owner"] for d in docs}
    assert owners and all(not o.endswith(f":{os.getpid()}") for o in owners)  # evaluated by the workers
    assert len(search.cv_results_["params"]) == 10
    assert search.best_score_ == max(search.cv_results_["mean_test_score"]) > 0.5
    assert search.predict(X).shape == y.shape
    store.close()


class LocalRidge(Ridge):
    """Defined here, so worker processes (which do not import the tests) cannot unpickle it."""


@pytest.mark.slow
def test_workers_that_cannot_load_the_estimator_stop_the_search_with_their_reason(mongo_url, db_name):
    from hyperdist.errors import HyperdistError

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    search = HyperdistSearchCV(LocalRidge(), {"alpha": hp.loguniform("alpha", -3, 3)}, max_evals=40, cv=2,
                               mongo=url_with_db(mongo_url, db_name), workers=1, random_state=0)
    with pytest.raises(HyperdistError, match=r"every worker exited .*No module named 'test_sklearn_search'"):
        search.fit(X, y)


class MainRidge(Ridge):
    """Claims to live in `__main__`, like a class defined in the person's script: workers fail each trial."""


MainRidge.__module__ = "__main__"


@pytest.mark.slow
def test_a_distributed_search_whose_every_trial_raised_names_the_stored_errors(mongo_url, db_name):
    from hyperdist.errors import HyperdistError

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    search = HyperdistSearchCV(MainRidge(), {"alpha": hp.loguniform("alpha", -3, 3)}, max_evals=3, cv=2,
                               mongo=url_with_db(mongo_url, db_name), workers=1, random_state=0)
    with pytest.raises(HyperdistError, match=r"no candidate was evaluated \(3 trials, 3 raised\); "
                                             r"AttributeError: .*'__main__' has no attribute 'MainRidge'.*define it in a module"):
        search.fit(X, y)
