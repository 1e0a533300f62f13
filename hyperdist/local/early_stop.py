"""Early-stop rules for `fmin(early_stop_fn=...)`, with Hyperopt's calling convention.

A rule is called as `rule(trials, *state)` and returns `(stop, state)`; the state list is passed back
on the next call.
"""
from __future__ import annotations

from typing import Any, Callable

from hyperdist.errors import AllTrialsFailed


def no_progress_loss(iteration_stop_count: int = 20, percent_increase: float = 0.0) -> Callable[..., tuple[bool, list]]:
    """Stop after `iteration_stop_count` trials in a row whose loss is not below the best loss by
    `percent_increase` % of it. Counted as Hyperopt counts: the first trial already counts as one
    without progress, so when the first trial stays the best the search stops after
    `iteration_stop_count` trials in all (Hyperopt's rule, kept so that searches stop where they did)."""
    if iteration_stop_count < 1:
        raise ValueError(f"no_progress_loss: iteration_stop_count={iteration_stop_count!r} must be >= 1")

    def rule(trials: Any, best_loss: float | None = None, iteration_no_progress: int = 0) -> tuple[bool, list]:
        new_loss = _last_loss(trials)
        if best_loss is None:
            return False, [new_loss, iteration_no_progress + 1]
        threshold = best_loss - abs(best_loss * percent_increase / 100.0)
        if new_loss is None or new_loss < threshold:
            best_loss, iteration_no_progress = new_loss, 0
        else:
            iteration_no_progress += 1
        return iteration_no_progress >= iteration_stop_count, [best_loss, iteration_no_progress]

    return rule


def _last_loss(trials: Any) -> float | None:
    """The loss of the latest trial (None when it has none); an object without a trial list (the
    distributed coordinator) offers the best trial's instead."""
    listed = getattr(trials, "trials", None)
    if isinstance(listed, list):
        return listed[-1]["result"].get("loss") if listed else None
    try:
        return trials.best_trial["result"]["loss"]
    except AllTrialsFailed:
        return None
