"""Pruning callbacks with real libraries and tiny models on the CPU. Each search evaluates a good
configuration, then a hopeless one (a learning rate near zero): with the median rule after one
finished trial, the second is pruned at its first step and its training stops right there."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hyperdist import Trials, fmin, generate_trials_to_calculate, hp
from hyperdist.objective.pruning import MedianPruner

ROUNDS = 8
SPACE = {"lr": hp.loguniform("lr", -12, 0)}
POINTS = [{"lr": 0.5}, {"lr": 1e-5}]


def _data(n: int = 240, d: int = 5, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    y = (X @ rng.normal(size=d) + 3.0 + 0.1 * rng.normal(size=n)).astype("float32")
    return X[:180], y[:180], X[180:], y[180:]


def _search(objective) -> Trials:
    """The two points first, then one suggested trial (as in Hyperopt, points come on top of
    max_evals, which must be at least 1)."""
    trials = generate_trials_to_calculate(POINTS)
    fmin(objective, SPACE, max_evals=1, trials=trials, show_progressbar=False,
         pruner=MedianPruner(n_startup_trials=1), rstate=0)
    return trials


def _check(trials: Trials, steps: int = ROUNDS) -> None:
    good, bad = trials.trials[:2]
    assert good["result"]["status"] == "ok", good
    assert sorted(int(s) for s in good["intermediate"]) == list(range(1, steps + 1))  # every round reported
    assert good["result"]["loss"] == pytest.approx(good["intermediate"][str(steps)], rel=1e-5)
    assert bad["result"]["status"] == "pruned" and bad["result"]["pruned_at"] == 1, bad["result"]
    assert list(bad["intermediate"]) == ["1"]  # training stopped at the first step
    assert bad["intermediate"]["1"] > good["intermediate"]["1"]


def test_xgboost():
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    from hyperdist.integrations.xgboost import XGBoostPruningCallback

    Xt, yt, Xv, yv = _data()
    dtrain, dvalid = xgb.DMatrix(Xt, yt), xgb.DMatrix(Xv, yv)

    def objective(cfg, ctx):
        params = {"eta": cfg["lr"], "max_depth": 3, "nthread": 1, "base_score": 0.0}
        log: dict = {}
        xgb.train(params, dtrain, ROUNDS, evals=[(dvalid, "validation")], evals_result=log, verbose_eval=False,
                  callbacks=[XGBoostPruningCallback(ctx, "validation-rmse")])
        return log["validation"]["rmse"][-1]

    _check(_search(objective))


def test_xgboost_names_the_metrics_it_has():
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    from hyperdist.errors import HyperdistError
    from hyperdist.integrations.xgboost import XGBoostPruningCallback

    Xt, yt, Xv, yv = _data()
    model = xgb.XGBRegressor(n_estimators=2, n_jobs=1, callbacks=[XGBoostPruningCallback(None, "valid-rmse")])
    with pytest.raises(HyperdistError, match=r"no evaluation 'valid-rmse'; this training logs \['validation_0-rmse'\]"):
        model.fit(Xt, yt, eval_set=[(Xv, yv)], verbose=False)


def test_lightgbm():
    lgb = pytest.importorskip("lightgbm", reason="the lightgbm extra is not installed")
    from hyperdist.integrations.lightgbm import LightGBMPruningCallback

    Xt, yt, Xv, yv = _data()

    def objective(cfg, ctx):
        params = {"learning_rate": cfg["lr"], "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1,
                  "num_threads": 1, "objective": "regression", "metric": "l2", "boost_from_average": False}
        log: dict = {}
        lgb.train(params, lgb.Dataset(Xt, yt), ROUNDS, valid_sets=[lgb.Dataset(Xv, yv)], valid_names=["valid"],
                  callbacks=[lgb.record_evaluation(log), LightGBMPruningCallback(ctx, "l2", valid_name="valid")])
        return log["valid"]["l2"][-1]

    _check(_search(objective))


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported; torch runs on the CPU
    return pytest.importorskip("keras", reason="the keras extra (and a backend: torch or jax) is not installed")


def test_keras():
    keras = _keras()
    from hyperdist.integrations.keras import KerasPruningCallback

    Xt, yt, Xv, yv = _data()

    def objective(cfg, ctx):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((Xt.shape[1],)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=cfg["lr"] / 10), loss="mse")
        history = model.fit(Xt, yt, validation_data=(Xv, yv), epochs=ROUNDS, batch_size=32, verbose=0,
                            callbacks=[KerasPruningCallback(ctx, "val_loss")])
        return history.history["val_loss"][-1]

    _check(_search(objective))


def test_lightning():
    pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
    L = pytest.importorskip("lightning.pytorch", reason="the lightning extra is not installed")
    import torch
    from hyperdist.integrations.lightning import LightningPruningCallback

    Xt, yt, Xv, yv = _data()

    class Regressor(L.LightningModule):
        def __init__(self, lr: float) -> None:
            super().__init__()
            self.lr, self.net = lr, torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    def loader(X, y, shuffle):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                                           batch_size=32, shuffle=shuffle)

    def objective(cfg, ctx):
        torch.manual_seed(0)
        trainer = L.Trainer(max_epochs=ROUNDS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            callbacks=[LightningPruningCallback(ctx, "val_loss")])
        trainer.fit(Regressor(cfg["lr"] / 10), loader(Xt, yt, True), loader(Xv, yv, False))
        return float(trainer.callback_metrics["val_loss"])

    _check(_search(objective))
