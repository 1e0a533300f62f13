"""Pruning for LightGBM: report a validation metric each boosting round, stop a pruned trial.

    def objective(cfg, ctx):
        booster = lgb.train(cfg, train, 200, valid_sets=[valid], valid_names=["valid"],
                            callbacks=[LightGBMPruningCallback(ctx, "l2", valid_name="valid")])

LightGBM says whether a metric is better higher (auc, ndcg...): such values are reported negated,
so that lower is better, as hyperdist's pruners expect. The step is the number of rounds done.
"""
from __future__ import annotations

from typing import Any

from hyperdist.integrations import require
from hyperdist.errors import HyperdistError
from hyperdist.objective.pruning import TrialContext

lgb = require("lightgbm", "lightgbm")


class LightGBMPruningCallback:
    """A LightGBM callback (`callbacks=[...]` of lgb.train or of the scikit-learn API's fit).
    A pruned trial raises TrialPruned out of training, which ends the trial as pruned."""

    order = 30  # after LightGBM's own recording and early-stopping callbacks

    def __init__(self, ctx: TrialContext, metric: str = "l2", valid_name: str = "valid_0") -> None:
        self.ctx, self.metric, self.valid_name = ctx, metric, valid_name

    def __call__(self, env: Any) -> None:
        for entry in env.evaluation_result_list or []:
            data, metric, value, higher_is_better = entry[:4]
            if data == self.valid_name and metric == self.metric:
                self.ctx.report(env.iteration - env.begin_iteration + 1, -value if higher_is_better else value)
                if self.ctx.should_stop():
                    self.ctx.prune()
                return
        known = [f"{e[0]}/{e[1]}" for e in env.evaluation_result_list or []]
        raise HyperdistError(f"LightGBMPruningCallback: no metric {self.metric!r} on {self.valid_name!r}; this "
                             f"training evaluates {known or 'nothing'} (give valid_sets=[...] and valid_names=[...])")
