"""`HyperdistSearchCV`: scikit-learn's search interface (fit, best_params_, best_estimator_,
cv_results_, refit) with TPE choosing the candidates, in this process or on worker processes.

The space is an `hp` structure that evaluates to a dict of the estimator's parameters (pipeline
`step__param` names); a dict an `hp.choice` picks is merged into it, so a choice can switch
parameters on and off together. Every candidate is scored with `cross_validate` on the same
folds, fixed before the search.

Local (`mongo=None`): `fmin` in this process; `n_jobs` runs the folds in parallel. Distributed
(`mongo=URL`): a coordinator here and `workers` local `hyperdist worker` processes against that
MongoDB, each evaluating whole candidates. The workers get the estimator and data from a file in
a private temporary directory, named to them in their environment only, written with skops
(https://skops.readthedocs.io), which persists estimators without pickle: a worker instantiates
only the types this process vouched for (also in their environment), and the database still
carries data alone. The estimator's class must be importable by the workers (not in `__main__`).
"""
from __future__ import annotations

import os
import tempfile
import time
import uuid
import warnings
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hyperdist.integrations import require
from hyperdist.errors import AllTrialsFailed, HyperdistError

require("sklearn", "sklearn")
from scipy.stats import rankdata  # noqa: E402
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier  # noqa: E402
from sklearn.exceptions import FitFailedWarning  # noqa: E402
from sklearn.metrics import check_scoring  # noqa: E402
from sklearn.model_selection import check_cv, cross_validate  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.metaestimators import available_if  # noqa: E402
from sklearn.utils.validation import check_is_fitted, indexable  # noqa: E402

_JOB_ENV = "HYPERDIST_SKLEARN_JOB"          # the job file, for the workers this search starts
_TRUSTED_ENV = "HYPERDIST_SKLEARN_TRUSTED"  # the types in it beyond skops' defaults, vouched for by the search


def _flatten(config: Any) -> dict[str, Any]:
    """The estimator parameters a space's evaluated point sets: nested dicts merged in."""
    if not isinstance(config, dict):
        raise HyperdistError(f"HyperdistSearchCV: the space must evaluate to a dict of estimator parameters, "
                             f"not {type(config).__name__}")
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(_flatten(value) if isinstance(value, dict) else {key: value})
    return out


def _metrics(scoring: Any) -> list[str] | None:
    """The metric names of a multi-metric `scoring`, None for a single one."""
    if isinstance(scoring, dict):
        return list(scoring)
    if isinstance(scoring, (list, tuple, set)):
        return list(scoring)
    return None


class _Job:
    """What evaluating one candidate needs: the estimator, data, folds and scoring."""

    def __init__(self, estimator: Any, X: Any, y: Any, folds: list, scoring: Any, target: str,
                 error_score: Any, return_train_score: bool, n_jobs: int | None, fit_params: dict) -> None:
        self.estimator, self.X, self.y, self.folds = estimator, X, y, folds
        self.scoring, self.target, self.error_score = scoring, target, error_score
        self.return_train_score, self.n_jobs, self.fit_params = return_train_score, n_jobs, fit_params

    def evaluate(self, config: Any) -> dict[str, Any]:
        params = _flatten(config)
        estimator = clone(self.estimator).set_params(**params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitFailedWarning)
            try:
                scores = cross_validate(estimator, self.X, self.y, cv=self.folds, scoring=self.scoring,
                                        n_jobs=self.n_jobs, error_score=self.error_score,
                                        return_train_score=self.return_train_score, params=self.fit_params)
            except ValueError as exc:  # every fold's fit failed: a failed candidate, not a failed search
                if self.error_score == "raise" or "fits failed" not in str(exc):
                    raise
                return {"status": "fail", "failure": "every fit failed", "fit_error": str(exc)[-4000:],
                        "cv": {key: [float("nan")] * len(self.folds) for key in self._keys()}}
        for w in caught:  # shown as they would have been; fit failures are also kept with the trial
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        cv = {k: [float(v) for v in values] for k, values in scores.items()}
        mean = float(np.mean(cv[f"test_{self.target}"]))
        if np.isfinite(mean):
            return {"loss": -mean, "status": "ok", "cv": cv}
        result = {"status": "fail", "failure": f"the {self.target} of some fold is {mean}", "cv": cv}
        failures = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
        if failures and np.isnan(cv[f"test_{self.target}"]).all():  # each fold failed to fit or to score
            result["fit_error"] = failures[-1][-4000:]
        return result

    def _keys(self) -> list[str]:
        """cross_validate's result keys for this scoring."""
        metrics = _metrics(self.scoring) or ["score"]
        splits = ("test", "train") if self.return_train_score else ("test",)
        return ["fit_time", "score_time"] + [f"{split}_{m}" for split in splits for m in metrics]


_loaded: dict[str, _Job] = {}


def evaluate_candidate(config: Any) -> dict[str, Any]:
    """The objective of a distributed search: runs on the workers HyperdistSearchCV starts."""
    path = os.environ.get(_JOB_ENV)
    if not path:
        raise HyperdistError(f"evaluate_candidate runs in the workers HyperdistSearchCV starts ({_JOB_ENV} is not set)")
    if path not in _loaded:
        sio = require("skops.io", "sklearn")
        trusted = [t for t in os.environ.get(_TRUSTED_ENV, "").split(",") if t]
        with open(path, "rb") as fh:
            _loaded[path] = _Job(**sio.loads(fh.read(), trusted=trusted))
    return _loaded[path].evaluate(config)


def _delegate(method: str) -> Callable[[Any], bool]:
    def check(self: Any) -> bool:
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, method)
        else:
            getattr(self.estimator, method)
        return True
    return check


class HyperdistSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search `space` (hp expressions over `estimator`'s parameters) for the best cross-validated
    score, `max_evals` candidates chosen by TPE; then refit on all data (`refit`)."""

    def __init__(self, estimator: Any, space: Any, *, max_evals: int = 50, cv: Any = None, scoring: Any = None,
                 refit: bool | str = True, mongo: str | None = None, workers: int | None = None,
                 n_jobs: int | None = None, error_score: Any = np.nan, return_train_score: bool = False,
                 random_state: int | None = None, algo: str = "tpe", exp_key: str | None = None,
                 verbose: int = 0) -> None:
        self.estimator, self.space, self.max_evals, self.cv, self.scoring = estimator, space, max_evals, cv, scoring
        self.refit, self.mongo, self.workers, self.n_jobs, self.error_score = refit, mongo, workers, n_jobs, error_score
        self.return_train_score, self.random_state, self.algo = return_train_score, random_state, algo
        self.exp_key, self.verbose = exp_key, verbose

    def __sklearn_tags__(self) -> Any:
        """What the searched estimator accepts and predicts is what the search does."""
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags, tags.regressor_tags = deepcopy(inner.classifier_tags), deepcopy(inner.regressor_tags)
        tags.target_tags, tags.input_tags = deepcopy(inner.target_tags), deepcopy(inner.input_tags)
        return tags

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> "HyperdistSearchCV":
        """Search, then refit the best candidate on all of X, y."""
        from hyperdist.algorithms import rand, tpe

        if self.algo not in ("tpe", "rand"):
            raise HyperdistError(f"HyperdistSearchCV: algo={self.algo!r}; expected 'tpe' or 'rand'")
        metrics = _metrics(self.scoring)
        if metrics is not None and not (isinstance(self.refit, str) and self.refit in metrics):
            raise ValueError(f"HyperdistSearchCV: with several metrics {metrics}, refit must name the one to optimise "
                             f"(refit={self.refit!r})")
        target = self.refit if metrics is not None and isinstance(self.refit, str) else "score"
        X, y, groups = indexable(X, y, groups)
        splitter = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        folds = list(splitter.split(X, y, groups))
        job = _Job(self.estimator, X, y, folds, self.scoring, target, self.error_score, self.return_train_score,
                   self.n_jobs, fit_params)
        algo = rand.suggest if self.algo == "rand" else tpe.suggest
        trials = self._distributed(job, algo) if self.mongo else self._local(job, algo)
        self.trials_ = trials
        self.multimetric_, self.n_splits_ = metrics is not None, len(folds)
        self.cv_results_ = self._results(trials, metrics or ["score"])
        errors = [t["result"].get("fit_error") for t in trials.trials if "cv" in (t.get("result") or {})]
        if all(errors):  # every fit of every candidate failed: raise the estimator's own error
            clone(self.estimator).set_params(**self.cv_results_["params"][0]).fit(X, y, **fit_params)
            raise ValueError(f"All the {len(errors) * len(folds)} fits failed; the last error:\n{errors[-1]}")
        key = f"rank_test_{target}"
        self.best_index_ = int(np.argmin(self.cv_results_[key])) if len(self.cv_results_[key]) else 0
        self.best_score_ = float(self.cv_results_[f"mean_test_{target}"][self.best_index_])
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.scorer_ = ({m: check_scoring(self.estimator, self.scoring[m] if isinstance(self.scoring, dict) else m)
                         for m in metrics} if metrics else check_scoring(self.estimator, self.scoring))
        if self.refit:
            started = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - started
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _seed(self) -> Any:
        return self.random_state if self.random_state is not None else np.random.default_rng()

    def _local(self, job: _Job, algo: Any) -> Any:
        from hyperdist.local.fmin import fmin
        from hyperdist.local.trials import Trials

        trials = Trials()
        try:
            fmin(job.evaluate, self.space, algo=algo, max_evals=self.max_evals, trials=trials, rstate=self._seed(),
                 show_progressbar=bool(self.verbose))
        except AllTrialsFailed:  # as in Hyperopt; `fit` reports the estimator's own error from the trials
            pass
        return trials

    def _distributed(self, job: _Job, algo: Any) -> Any:
        from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
        from hyperdist.server.launcher import spawn_workers, stop_workers
        from hyperdist.distributed.mongotrials import MongoTrials
        from hyperdist.space.compiled import compile_space

        workers = self.workers if self.workers is not None else (os.cpu_count() or 1)
        if workers < 1:
            raise HyperdistError(f"HyperdistSearchCV: workers={self.workers!r}; a distributed search needs at least 1")
        exp_key = self.exp_key or f"sklearn-{type(self.estimator).__name__}-{uuid.uuid4().hex[:8]}"
        trials = MongoTrials(str(self.mongo), exp_key=exp_key, workers=workers, refresh=False)
        seed = self.random_state if self.random_state is not None else int(np.random.default_rng().integers(2**31 - 1))
        coordinator = Coordinator(trials.store, exp_key, compile_space(self.space), algo, StopRules(self.max_evals),
                                  CoordinatorConfig(seed=seed, workers=workers),
                                  objective=f"{__name__}:evaluate_candidate")
        sio = require("skops.io", "sklearn")
        try:
            data = sio.dumps(vars(job))
        except Exception as exc:
            raise HyperdistError(f"HyperdistSearchCV: the estimator, data or scoring cannot be sent to workers "
                                 f"({type(exc).__name__}: {exc}); search without mongo=") from None
        trusted = ",".join(sio.get_untrusted_types(data=data))
        with tempfile.TemporaryDirectory(prefix="hyperdist-sklearn-") as tmp:
            path = os.path.join(tmp, "job.skops")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(data)
            coordinator.start(resume=True)
            procs = spawn_workers(workers, trials.store.worker_url, exp_key, f"{__name__}:evaluate_candidate",
                                  db=trials.store.db_name, env={_JOB_ENV: path, _TRUSTED_ENV: trusted},
                                  log_dir=Path(tmp))

            def watch(progress: Any) -> None:  # workers that all died would leave the search waiting forever
                if all(w.proc.poll() is not None for w in procs):
                    last = procs[0].log_tail(2000).strip().splitlines()[-3:]
                    raise HyperdistError(f"HyperdistSearchCV: every worker exited before the search ended "
                                         f"(exit codes {[w.proc.returncode for w in procs]}); the last lines of one: "
                                         + " | ".join(last))
            try:
                coordinator.run(watch)
            except BaseException:
                coordinator.stop()  # marked stopped, the lease handed back: a later fit resumes it
                raise
            finally:
                stop_workers(procs)
        trials.refresh()
        if self.error_score == "raise":
            failed = [t for t in trials.all_trials if t.get("error")]  # `trials` leaves out those that raised
            if failed:
                raise HyperdistError(f"HyperdistSearchCV: trial {failed[0]['tid']} failed: "
                                     f"{failed[0]['error'].get('type')}: {failed[0]['error'].get('message')}")
        return trials

    # --- results --------------------------------------------------------------------------------
    def _results(self, trials: Any, metrics: list[str]) -> dict[str, Any]:
        from hyperdist.space.compiled import compile_space

        space = compile_space(self.space)
        done = [t for t in trials.trials if "cv" in (t.get("result") or {})]
        if not done:  # the reasons are in the trials that raised, which only `all_trials` holds
            failed = [t["error"] for t in trials.all_trials if t.get("error")]
            errors = sorted({f"{e.get('type')}: {e.get('message')}" for e in failed})
            hint = (" (workers import the estimator's class: define it in a module, not in the script run as "
                    "__main__)") if any("'__main__'" in e for e in errors) else ""
            raise HyperdistError(f"HyperdistSearchCV: no candidate was evaluated ({len(trials.all_trials)} trials, "
                                 f"{len(failed)} raised); " + ("; ".join(errors[:3]) or "no error was recorded") + hint)
        params = [_flatten(space.eval(t["params"])) for t in done]
        cvs = [t["result"]["cv"] for t in done]
        out: dict[str, Any] = {}
        for name in ("fit_time", "score_time"):
            values = np.array([c[name] for c in cvs])
            out[f"mean_{name}"], out[f"std_{name}"] = values.mean(axis=1), values.std(axis=1)
        for name in sorted({k for p in params for k in p}):
            column = np.ma.MaskedArray(np.empty(len(params), dtype=object), mask=True)
            for i, p in enumerate(params):
                if name in p:
                    column[i] = p[name]
            out[f"param_{name}"] = column
        out["params"] = params
        for split in ("test", "train") if self.return_train_score else ("test",):
            for metric in metrics:
                key = f"{split}_{metric}" if len(metrics) > 1 or metric != "score" else f"{split}_score"
                scores = np.array([c[key] for c in cvs])
                for k in range(scores.shape[1]):
                    out[f"split{k}_{split}_{metric}"] = scores[:, k]
                out[f"mean_{split}_{metric}"], out[f"std_{split}_{metric}"] = scores.mean(axis=1), scores.std(axis=1)
                if split == "test":
                    out[f"rank_test_{metric}"] = _rank(out[f"mean_test_{metric}"])
        return out

    # --- the refitted estimator -----------------------------------------------------------------
    @property
    def classes_(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.n_features_in_

    def score(self, X: Any, y: Any = None, **params: Any) -> float:
        check_is_fitted(self, "best_estimator_")
        scorer: Any = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return scorer(self.best_estimator_, X, y, **params)

    @available_if(_delegate("predict"))
    def predict(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_delegate("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_delegate("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_delegate("decision_function"))
    def decision_function(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_delegate("transform"))
    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    @available_if(_delegate("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.inverse_transform(X)

    @available_if(_delegate("score_samples"))
    def score_samples(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score_samples(X)


def _rank(means: np.ndarray) -> np.ndarray:
    """1 for the best mean score; candidates with a NaN score rank last (as scikit-learn ranks)."""
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return rankdata(-filled, method="min").astype(np.int32)
