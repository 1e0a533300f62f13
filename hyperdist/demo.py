"""The demo search: tune a scikit-learn classifier on the digits data set that ships with scikit-learn.

The space is a nested choice of model families, each with its own hyperparameters, which is the
kind of conditional space TPE handles well. The loss is 1 - mean 3-fold cross-validated accuracy
on a training split; the held-out test split is never seen by the search (see docs/faq.md).
"""
from __future__ import annotations

from typing import Any

from hyperdist import hp

space = {
    "model": hp.choice("model", [
        {"kind": "svc", "C": hp.loguniform("svc_C", -4, 5), "gamma": hp.loguniform("svc_gamma", -9, -1)},
        {"kind": "forest", "n_estimators": hp.quniform("rf_trees", 10, 200, 10),
         "max_depth": hp.choice("rf_depth", [None, hp.quniform("rf_max_depth", 2, 30, 1)]),
         "max_features": hp.uniform("rf_max_features", 0.05, 1.0)},
        {"kind": "logreg", "C": hp.loguniform("lr_C", -6, 4)},
        {"kind": "knn", "k": hp.quniform("knn_k", 1, 25, 1), "weights": hp.choice("knn_weights", ["uniform", "distance"])},
    ]),
    "scale": hp.choice("scale", [False, True]),
}


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return X_train, y_train


def _model(cfg: dict) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    m = cfg["model"]
    if m["kind"] == "svc":
        return SVC(C=m["C"], gamma=m["gamma"])
    if m["kind"] == "forest":
        depth = None if m["max_depth"] is None else int(m["max_depth"])
        return RandomForestClassifier(n_estimators=int(m["n_estimators"]), max_depth=depth,
                                      max_features=m["max_features"], n_jobs=1, random_state=0)
    if m["kind"] == "logreg":
        return LogisticRegression(C=m["C"], max_iter=300)
    return KNeighborsClassifier(n_neighbors=int(m["k"]), weights=m["weights"])


def objective(cfg: dict) -> dict:
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    model = _model(cfg)
    if cfg["scale"]:
        model = make_pipeline(StandardScaler(), model)
    accuracy = float(cross_val_score(model, X, y, cv=3).mean())
    return {"loss": 1.0 - accuracy, "status": "ok", "accuracy": accuracy, "kind": cfg["model"]["kind"]}
