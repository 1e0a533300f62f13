"""Pruning for XGBoost: report an evaluation metric each boosting round, stop a pruned trial.

    def objective(cfg, ctx):
        booster = xgb.train(cfg, dtrain, 200, evals=[(dvalid, "validation")],
                            callbacks=[XGBoostPruningCallback(ctx, "validation-rmse")])

The same callback goes in `XGBRegressor(callbacks=[...])`, whose eval sets are named
`validation_0`, `validation_1`, ... The step reported is the number of rounds done.
"""
from __future__ import annotations

from typing import Any

from hyperdist.integrations import require
from hyperdist.errors import HyperdistError
from hyperdist.objective.pruning import TrialContext

xgb = require("xgboost", "xgboost")


class XGBoostPruningCallback(xgb.callback.TrainingCallback):  # type: ignore[name-defined]
    """`observation_key` is '<eval set name>-<metric>'; lower is better unless `higher_is_better`.
    A pruned trial raises TrialPruned out of training, which ends the trial as pruned."""

    def __init__(self, ctx: TrialContext, observation_key: str = "validation_0-rmse",
                 higher_is_better: bool = False) -> None:
        super().__init__()
        self.ctx, self.key, self.sign = ctx, observation_key, -1.0 if higher_is_better else 1.0

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        value = _lookup(evals_log, self.key)
        self.ctx.report(epoch + 1, self.sign * value)
        if self.ctx.should_stop():
            self.ctx.prune()
        return False


def _lookup(evals_log: dict, key: str) -> float:
    for data, metrics in evals_log.items():
        metric = key[len(data) + 1:] if key.startswith(f"{data}-") else None
        if metric in metrics:
            last = metrics[metric][-1]
            return float(last[0] if isinstance(last, tuple) else last)  # xgb.cv logs (mean, std)
    known = [f"{data}-{metric}" for data, metrics in evals_log.items() for metric in metrics]
    raise HyperdistError(f"XGBoostPruningCallback: no evaluation {key!r}; this training logs {known or 'none'} "
                         "(give evals=[(dmatrix, name)] or eval_set=[...])")
