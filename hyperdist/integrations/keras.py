"""Pruning for Keras 3 (any backend): report a metric at each epoch's end, stop a pruned trial.

    def objective(cfg, ctx):
        model.fit(x, y, validation_data=(xv, yv), epochs=50, callbacks=[KerasPruningCallback(ctx, "val_loss")])

The step is the number of epochs done.
"""
from __future__ import annotations

from typing import Any

from hyperdist.integrations import require
from hyperdist.errors import HyperdistError
from hyperdist.objective.pruning import TrialContext

keras = require("keras", "keras")


class KerasPruningCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
    """`monitor` is a key of the epoch's logs (`val_loss`, `val_accuracy`...); lower is better unless
    `higher_is_better`. A pruned trial raises TrialPruned out of `fit`, which ends it as pruned."""

    def __init__(self, ctx: TrialContext, monitor: str = "val_loss", higher_is_better: bool = False) -> None:
        super().__init__()
        self.ctx, self.monitor, self.sign = ctx, monitor, -1.0 if higher_is_better else 1.0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise HyperdistError(f"KerasPruningCallback: no {self.monitor!r} in the epoch's logs {sorted(logs)} "
                                 "(val_* needs validation_data or validation_split)")
        self.ctx.report(epoch + 1, self.sign * float(logs[self.monitor]))
        if self.ctx.should_stop():
            self.ctx.prune()
