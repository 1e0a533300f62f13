"""Early-stop rules for `fmin(early_stop_fn=...)`, with Hyperopt's calling convention.

A rule is called as `rule(trials, *state)` and returns `(stop, state)`; the state list is passed back
on the next call.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import AllTrialsFailed


def no_progress_loss(iteration_stop_count: int = 20, percent_increase: float = 0.0) -> Callable[..., tuple[bool, list]]:
    """Stop when the best loss has not improved by `percent_increase` % for `iteration_stop_count` trials."""
    if iteration_stop_count < 1:
        raise ValueError(f"no_progress_loss: iteration_stop_count={iteration_stop_count!r} must be >= 1")

    def rule(trials: Any, best_loss: float | None = None, iteration_no_progress: int = 0) -> tuple[bool, list]:
        try:
            new_loss = trials.best_trial["result"]["loss"]
        except AllTrialsFailed:
            return False, [best_loss, iteration_no_progress + 1]
        if best_loss is None:
            return False, [new_loss, 0]
        margin = abs(best_loss) * percent_increase / 100.0
        if new_loss < best_loss - margin:
            return False, [new_loss, 0]
        iteration_no_progress += 1
        return iteration_no_progress >= iteration_stop_count, [best_loss, iteration_no_progress]

    return rule
