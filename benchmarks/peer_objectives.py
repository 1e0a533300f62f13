"""Objectives for the peer systems of benchmarks/peers.py (Hyperopt MongoTrials, Optuna).

hyperopt-mongo-worker unpickles the driver's domain, which names the objective by module: this file
must be importable in the workers (peers.py puts benchmarks/ on their PYTHONPATH). Stdlib only, so
it imports in every virtualenv.

Both objectives return the same cheap loss as benchmarks/objectives.py (a ** 2); `sleep50`
sleeps 50 ms first. The Hyperopt versions also return `t_end` (time.time() when the evaluation
ended), for reference: the clocks are read from what the storage records (peer_process.clocks).
"""
from __future__ import annotations

import time


def _loss(cfg: dict) -> float:
    return float(cfg["a"]) ** 2


def hyperopt_null(cfg: dict) -> dict:
    return {"loss": _loss(cfg), "status": "ok", "t_end": time.time()}


def hyperopt_sleep50(cfg: dict) -> dict:
    time.sleep(0.05)
    return {"loss": _loss(cfg), "status": "ok", "t_end": time.time()}


HYPEROPT = {"null": hyperopt_null, "sleep50": hyperopt_sleep50}


def optuna_config(trial, space: str = "mixed6") -> dict:
    """The spaces of benchmarks/spaces.py in Optuna's define-by-run API.

    Optuna has no normal family: in `mixed6`, normal(0, 2) becomes a uniform range 0 +- 3 * 2,
    lognormal(0, 1) a log-uniform range exp(0 +- 3 * 1) (the convention of benchmarks/domains.py).
    """
    if space == "uniform10":
        return {p: trial.suggest_float(p, -5, 5) for p in "abcdefghij"}
    if space == "uniform1":
        return {"a": trial.suggest_float("a", -5, 5)}
    if space != "mixed6":
        raise ValueError(f"unknown space {space!r}")
    cfg = {
        "a": trial.suggest_float("a", -5, 5),
        "b": trial.suggest_float("b", 3.3546262790251185e-04, 1.0, log=True),  # exp(-8)..exp(0)
        "c": trial.suggest_float("c", 0, 100, step=5),
        "d": trial.suggest_float("d", -6, 6),
        "e": trial.suggest_int("e", 0, 9),
    }
    k = trial.suggest_categorical("m", ["lin", "rbf"])
    cfg["m"] = {"k": k}
    if k == "rbf":
        cfg["m"]["g"] = trial.suggest_float("g", 0.049787068367863944, 20.085536923187668, log=True)  # exp(-3)..exp(3)
    return cfg


def optuna_null(trial, space: str = "mixed6") -> float:
    return _loss(optuna_config(trial, space))


def optuna_sleep50(trial, space: str = "mixed6") -> float:
    cfg = optuna_config(trial, space)
    time.sleep(0.05)
    return _loss(cfg)


OPTUNA = {"null": optuna_null, "sleep50": optuna_sleep50}
