"""Pruning for PyTorch Lightning: report a logged metric after each validation, stop a pruned trial.

    def objective(cfg, ctx):
        trainer = L.Trainer(max_epochs=50, callbacks=[LightningPruningCallback(ctx, "val_loss")])
        trainer.fit(model, train_loader, val_loader)

`monitor` is a name the LightningModule logs with `self.log(...)`. The step is the number of
epochs done. Works with `lightning` (import lightning.pytorch) or the older `pytorch_lightning`.
"""
from __future__ import annotations

from typing import Any

from hyperdist.errors import HyperdistError
from hyperdist.objective.pruning import TrialContext

try:
    from lightning.pytorch import Callback
except ImportError:
    try:
        from pytorch_lightning import Callback  # type: ignore[assignment]  # the older package name
    except ImportError:
        raise HyperdistError("this integration needs lightning: pip install 'hyperdist[lightning]'") from None


class LightningPruningCallback(Callback):
    """Lower is better unless `higher_is_better`. A pruned trial raises TrialPruned out of
    `trainer.fit` (Lightning re-raises a callback's exception after its teardown)."""

    def __init__(self, ctx: TrialContext, monitor: str = "val_loss", higher_is_better: bool = False) -> None:
        super().__init__()
        self.ctx, self.monitor, self.sign = ctx, monitor, -1.0 if higher_is_better else 1.0

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise HyperdistError(f"LightningPruningCallback: {self.monitor!r} was not logged; the module logs "
                                 f"{sorted(trainer.callback_metrics)} (self.log('{self.monitor}', ...))")
        self.ctx.report(trainer.current_epoch + 1, self.sign * float(value))
        if self.ctx.should_stop():
            self.ctx.prune()
