"""Real tuning tasks on data sets that ship with scikit-learn, each written once for hyperdist/Hyperopt
(`space(hp)`) and for Optuna (`optuna(trial)`), scored by `loss(cfg)`.

Every model has a fixed random_state and the cross-validation folds are fixed, so a configuration
always gets the same loss (re-evaluating a near-duplicate teaches nothing): the differences between
optimisers are the optimisers'. Evaluations are real fits (nothing is cached but the data set),
sized to take 10-70 ms each on one core.

| task | kind | space | role |
|---|---|---|---|
| cancer_models | classification, 1 - 3-fold CV accuracy | scaling x 5 model families, nested | tuning |
| diabetes_models | regression, 1 - 3-fold CV R^2 | 5 model families, nested | tuning |
| diabetes_hgb | regression, 1 - 3-fold CV R^2 | HistGradientBoosting, 5 continuous parameters | tuning |
| digits_models | classification, 1 - 3-fold CV accuracy | scaling x 4 model families, nested | held out |
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

L = math.log


@dataclass(frozen=True)
class Task:
    name: str
    space: Callable[[Any], Any]
    optuna: Callable[[Any], dict]
    loss: Callable[[dict], float]
    held_out: bool = False


@functools.lru_cache(maxsize=None)
def _data(name: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """The data set and its fixed folds (the only thing kept between evaluations)."""
    from sklearn import datasets
    from sklearn.model_selection import KFold, StratifiedKFold

    if name == "cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        return X, y, StratifiedKFold(3, shuffle=True, random_state=0)
    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        keep = np.random.default_rng(0).permutation(len(y))[:600]
        return X[keep], y[keep], StratifiedKFold(3, shuffle=True, random_state=0)
    X, y = datasets.load_diabetes(return_X_y=True)
    return X, y, KFold(3, shuffle=True, random_state=0)


def _cv_loss(data: str, model: Any, scale: bool = False, scoring: str | None = None) -> float:
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, folds = _data(data)
    if scale:
        model = make_pipeline(StandardScaler(), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of extreme settings are part of the task
        return 1.0 - float(cross_val_score(model, X, y, cv=folds, scoring=scoring).mean())


# --- classification over model families ------------------------------------------------------------

def _classifier(m: dict) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    kind = m["kind"]
    if kind == "logreg" and "penalty" not in m:  # digits: multinomial lbfgs, bounded
        return LogisticRegression(C=m["C"], max_iter=100)
    if kind == "logreg":
        # liblinear (the solver with l1 and l2) fits one class against the rest
        # (random_state: liblinear shuffles the data; unseeded, large-C l1 fits varied by a sample between runs)
        return OneVsRestClassifier(LogisticRegression(C=m["C"], penalty=m["penalty"], solver="liblinear", max_iter=200,
                                                      random_state=0))
    if kind == "svc":
        return SVC(C=m["C"], gamma=m["gamma"])
    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=int(m["k"]), weights=m["weights"], p=m["p"])
    if kind == "tree":
        return DecisionTreeClassifier(max_depth=int(m["depth"]), min_samples_leaf=int(m["leaf"]),
                                      criterion=m["criterion"], random_state=0)
    return ExtraTreesClassifier(n_estimators=int(m["trees"]), max_features=m["features"],
                                min_samples_leaf=int(m["leaf"]), random_state=0, n_jobs=1)


def _families_space(hp, with_tree: bool) -> dict:
    """cancer (with_tree): logistic regression with an l1/l2 choice (liblinear); digits (without): l2 only
    (lbfgs, 100 iterations: one-against-rest liblinear took up to 22 s per evaluation on scaled digits)."""
    logreg = {"kind": "logreg", "C": hp.loguniform("lr_C", L(1e-4), L(1e4))}
    if with_tree:
        logreg["penalty"] = hp.choice("lr_penalty", ["l1", "l2"])
    families = [
        logreg,
        {"kind": "svc", "C": hp.loguniform("svc_C", L(1e-3), L(1e4)),
         "gamma": hp.loguniform("svc_gamma", L(1e-5), L(10))},
        {"kind": "knn", "k": hp.qloguniform("knn_k", 0, L(60), 1),
         "weights": hp.choice("knn_weights", ["uniform", "distance"]), "p": hp.choice("knn_p", [1, 2])},
        {"kind": "extra", "trees": hp.quniform("et_trees", 5, 30, 5),
         "features": hp.uniform("et_features", 0.05, 1.0), "leaf": hp.qloguniform("et_leaf", 0, L(20), 1)},
    ]
    if with_tree:
        families.insert(3, {"kind": "tree", "depth": hp.quniform("dt_depth", 1, 20, 1),
                            "leaf": hp.qloguniform("dt_leaf", 0, L(50), 1),
                            "criterion": hp.choice("dt_criterion", ["gini", "entropy"])})
    return {"scale": hp.choice("scale", [False, True]), "model": hp.choice("model", families)}


def _families_optuna(t, with_tree: bool) -> dict:
    kinds = ["logreg", "svc", "knn"] + (["tree"] if with_tree else []) + ["extra"]
    scale = t.suggest_categorical("scale", [False, True])
    kind = t.suggest_categorical("model", kinds)
    if kind == "logreg":
        m = {"C": t.suggest_float("lr_C", 1e-4, 1e4, log=True)}
        if with_tree:
            m["penalty"] = t.suggest_categorical("lr_penalty", ["l1", "l2"])
    elif kind == "svc":
        m = {"C": t.suggest_float("svc_C", 1e-3, 1e4, log=True), "gamma": t.suggest_float("svc_gamma", 1e-5, 10, log=True)}
    elif kind == "knn":
        m = {"k": t.suggest_int("knn_k", 1, 60, log=True), "weights": t.suggest_categorical("knn_weights", ["uniform", "distance"]),
             "p": t.suggest_categorical("knn_p", [1, 2])}
    elif kind == "tree":
        m = {"depth": t.suggest_int("dt_depth", 1, 20), "leaf": t.suggest_int("dt_leaf", 1, 50, log=True),
             "criterion": t.suggest_categorical("dt_criterion", ["gini", "entropy"])}
    else:
        m = {"trees": t.suggest_int("et_trees", 5, 30, step=5), "features": t.suggest_float("et_features", 0.05, 1.0),
             "leaf": t.suggest_int("et_leaf", 1, 20, log=True)}
    return {"scale": scale, "model": {"kind": kind, **m}}


def cancer_models() -> Task:
    return Task("cancer_models", lambda hp: _families_space(hp, True), lambda t: _families_optuna(t, True),
                lambda c: _cv_loss("cancer", _classifier(c["model"]), c["scale"]))


def digits_models() -> Task:
    return Task("digits_models", lambda hp: _families_space(hp, False), lambda t: _families_optuna(t, False),
                lambda c: _cv_loss("digits", _classifier(c["model"]), c["scale"]), held_out=True)


# --- regression over model families ----------------------------------------------------------------

def _regressor(m: dict) -> Any:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import ElasticNet, Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.svm import SVR

    kind = m["kind"]
    if kind == "ridge":
        return Ridge(alpha=m["alpha"])
    if kind == "enet":
        return ElasticNet(alpha=m["alpha"], l1_ratio=m["l1_ratio"], max_iter=2000)
    if kind == "svr":
        return SVR(C=m["C"], epsilon=m["epsilon"], gamma=m["gamma"])
    if kind == "knn":
        return KNeighborsRegressor(n_neighbors=int(m["k"]), weights=m["weights"])
    return RandomForestRegressor(n_estimators=int(m["trees"]), max_depth=int(m["depth"]), max_features=m["features"],
                                 min_samples_leaf=int(m["leaf"]), random_state=0, n_jobs=1)


def _diabetes_space(hp) -> dict:
    return {"model": hp.choice("model", [
        {"kind": "ridge", "alpha": hp.loguniform("ridge_alpha", L(1e-4), L(1e4))},
        {"kind": "enet", "alpha": hp.loguniform("enet_alpha", L(1e-4), L(10)),
         "l1_ratio": hp.uniform("enet_l1", 0.0, 1.0)},
        {"kind": "svr", "C": hp.loguniform("svr_C", L(1e-2), L(1e4)),
         "epsilon": hp.loguniform("svr_eps", L(1e-2), L(100)), "gamma": hp.loguniform("svr_gamma", L(1e-4), L(10))},
        {"kind": "knn", "k": hp.qloguniform("knn_k", 0, L(80), 1),
         "weights": hp.choice("knn_weights", ["uniform", "distance"])},
        {"kind": "forest", "trees": hp.quniform("rf_trees", 5, 25, 5), "depth": hp.quniform("rf_depth", 1, 12, 1),
         "features": hp.uniform("rf_features", 0.1, 1.0), "leaf": hp.qloguniform("rf_leaf", 0, L(40), 1)},
    ])}


def _diabetes_optuna(t) -> dict:
    kind = t.suggest_categorical("model", ["ridge", "enet", "svr", "knn", "forest"])
    if kind == "ridge":
        m = {"alpha": t.suggest_float("ridge_alpha", 1e-4, 1e4, log=True)}
    elif kind == "enet":
        m = {"alpha": t.suggest_float("enet_alpha", 1e-4, 10, log=True), "l1_ratio": t.suggest_float("enet_l1", 0, 1)}
    elif kind == "svr":
        m = {"C": t.suggest_float("svr_C", 1e-2, 1e4, log=True), "epsilon": t.suggest_float("svr_eps", 1e-2, 100, log=True),
             "gamma": t.suggest_float("svr_gamma", 1e-4, 10, log=True)}
    elif kind == "knn":
        m = {"k": t.suggest_int("knn_k", 1, 80, log=True), "weights": t.suggest_categorical("knn_weights", ["uniform", "distance"])}
    else:
        m = {"trees": t.suggest_int("rf_trees", 5, 25, step=5), "depth": t.suggest_int("rf_depth", 1, 12),
             "features": t.suggest_float("rf_features", 0.1, 1.0), "leaf": t.suggest_int("rf_leaf", 1, 40, log=True)}
    return {"model": {"kind": kind, **m}}


def diabetes_models() -> Task:
    return Task("diabetes_models", _diabetes_space, _diabetes_optuna,
                lambda c: _cv_loss("diabetes", _regressor(c["model"]), c["model"]["kind"] in ("ridge", "enet", "svr", "knn"),
                                   scoring="r2"))


# --- one model, continuous space ---------------------------------------------------------------------

def _hgb_loss(c: dict) -> float:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        max_iter=30, learning_rate=c["learning_rate"], l2_regularization=c["l2"], max_features=c["max_features"],
        min_samples_leaf=int(round(c["min_leaf"])), max_leaf_nodes=int(round(c["max_leaves"])),
        early_stopping=False, random_state=0)
    return _cv_loss("diabetes", model, scoring="r2")


def diabetes_hgb() -> Task:
    """Purely continuous for the optimiser: the two integer settings are log-uniform floats the objective
    rounds, as a user would write them."""
    return Task(
        "diabetes_hgb",
        lambda hp: {"learning_rate": hp.loguniform("learning_rate", L(0.005), L(1.0)),
                    "l2": hp.loguniform("l2", L(1e-4), L(100)), "max_features": hp.uniform("max_features", 0.1, 1.0),
                    "min_leaf": hp.loguniform("min_leaf", L(2), L(100)), "max_leaves": hp.loguniform("max_leaves", L(2), L(64))},
        lambda t: {"learning_rate": t.suggest_float("learning_rate", 0.005, 1.0, log=True),
                   "l2": t.suggest_float("l2", 1e-4, 100, log=True), "max_features": t.suggest_float("max_features", 0.1, 1.0),
                   "min_leaf": t.suggest_float("min_leaf", 2, 100, log=True),
                   "max_leaves": t.suggest_float("max_leaves", 2, 64, log=True)},
        _hgb_loss)


TASKS: dict[str, Task] = {t.name: t for t in (cancer_models(), diabetes_models(), diabetes_hgb(), digits_models())}
