"""Stopping unpromising trials early from the values they report along the way.

An objective that takes a second argument receives a `TrialContext`; it calls `ctx.report(step,
value)` (lower is better, like the loss) and asks `ctx.should_stop()`. The decision is the
experiment's pruner, applied to the values other trials reported at the same step, read from the
shared history, so it works the same with one worker or many:

- `MedianPruner`: stop when this trial's value at a step is worse than the median of the values
  finished trials reported at that step (after `n_startup_trials` finished trials and
  `n_warmup_steps` steps) — the median stopping rule of Google Vizier.
- `ASHAPruner`: asynchronous successive halving (Li et al. 2020). Rungs sit at steps
  `min_resource * reduction_factor ** k`; a trial reaching a rung continues only if its value is in
  the best 1/reduction_factor of all values recorded at that rung so far (the best one always
  continues). No trial ever waits for others, which is what makes it asynchronous.

A pruned trial ends with status `pruned` and its last reported value as its loss. It counts toward
`max_evals`, is never the best trial, and TPE treats it as a finished trial with that loss (the
value it reached when stopped; intermediate values are usually worse than final ones, so such
trials mostly land in the "above" group).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol

from hyperdist.errors import HyperdistError
from hyperdist.objective.result import STATUS_PRUNED


class TrialPruned(Exception):
    """Raise from an objective (or let `ctx.prune()` raise it) to end the trial as pruned."""


class Peers(Protocol):
    """Where a pruner reads the values other trials reported at one step."""

    def values_at(self, step: int, finished_only: bool) -> list[float]: ...

    def finished_count(self) -> int: ...


@dataclass(frozen=True)
class NoPruner:
    name: str = "none"

    def should_stop(self, step: int, value: float, peers: Peers) -> bool:
        return False


@dataclass(frozen=True)
class MedianPruner:
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    name: str = "median"

    def should_stop(self, step: int, value: float, peers: Peers) -> bool:
        if step < self.n_warmup_steps or peers.finished_count() < self.n_startup_trials:
            return False
        others = sorted(peers.values_at(step, finished_only=True))
        if not others:
            return False
        mid = len(others) // 2
        median = others[mid] if len(others) % 2 else 0.5 * (others[mid - 1] + others[mid])
        return value > median


@dataclass(frozen=True)
class ASHAPruner:
    min_resource: int = 1
    reduction_factor: int = 3
    name: str = "asha"

    def is_rung(self, step: int) -> bool:
        if step < self.min_resource:
            return False
        k = math.log(step / self.min_resource, self.reduction_factor)
        return abs(k - round(k)) < 1e-9

    def should_stop(self, step: int, value: float, peers: Peers) -> bool:
        if not self.is_rung(step):
            return False
        rung = sorted(peers.values_at(step, finished_only=False) + [value])
        keep = max(1, len(rung) // self.reduction_factor)
        return value > rung[keep - 1]


Pruner = NoPruner | MedianPruner | ASHAPruner
_KINDS: dict[str, type] = {"none": NoPruner, "median": MedianPruner, "asha": ASHAPruner}


def make_pruner(config: Any) -> Pruner:
    """A pruner from a name, a config dict (as stored in the experiment), or a pruner."""
    if config is None:
        return NoPruner()
    if isinstance(config, (NoPruner, MedianPruner, ASHAPruner)):
        return config
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict) or config.get("name") not in _KINDS:
        raise HyperdistError(f"unknown pruner {config!r}; expected one of {sorted(_KINDS)}")
    kind = _KINDS[config["name"]]
    try:
        pruner = kind(**{k: v for k, v in config.items() if k != "name"})
    except TypeError as exc:
        raise HyperdistError(f"pruner {config!r}: {exc}") from None
    if isinstance(pruner, ASHAPruner) and (pruner.min_resource < 1 or pruner.reduction_factor < 2):
        raise HyperdistError(f"pruner {config!r}: min_resource must be >= 1 and reduction_factor >= 2")
    return pruner


def pruner_config(pruner: Pruner) -> dict:
    return asdict(pruner)


def pruner_options(pruner: Any) -> dict:
    """An experiment's `options` for a pruner given as a name, a config or an object: empty when
    there is none, so an experiment without pruning stores nothing about it."""
    chosen = make_pruner(pruner)
    return {} if isinstance(chosen, NoPruner) else {"pruner": pruner_config(chosen)}


class TrialContext:
    """Handed to objectives that take a second argument: report progress, ask whether to stop."""

    def __init__(self, tid: int, pruner: Pruner, peers: Peers,
                 sink: Callable[[int, float], bool | None]) -> None:
        """`sink` records a report; False from it means the trial's lease is gone (it was handed out
        again), and `should_stop()` then says stop: the result would not be accepted anyway."""
        self.tid = tid
        self._pruner, self._peers, self._sink = pruner, peers, sink
        self.intermediate: dict[int, float] = {}
        self.pruned_at: int | None = None
        self.lease_lost = False

    def report(self, step: int, value: float) -> None:
        """Record the value reached at `step` (an int, e.g. an epoch); lower is better."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise HyperdistError(f"report: step={step!r} must be a non-negative int")
        value = float(value)
        self.intermediate[step] = value
        if self._sink(step, value) is False:
            self.lease_lost = True

    def should_stop(self) -> bool:
        """True when the pruner judges the trial unpromising at its last reported step."""
        if self.pruned_at is not None:
            return True
        if not self.intermediate:
            return False
        step = max(self.intermediate)
        if self.lease_lost:
            self.pruned_at = step
            return True
        if math.isfinite(self.intermediate[step]) and not self._pruner.should_stop(step, self.intermediate[step],
                                                                                   self._peers):
            return False
        self.pruned_at = step
        return True

    def prune(self) -> None:
        """Stop here: raises TrialPruned, which the worker records as a pruned trial."""
        raise TrialPruned(f"pruned at step {self.pruned_at}")

    def pruned_result(self) -> dict:
        step = self.pruned_at if self.pruned_at is not None else max(self.intermediate, default=0)
        return {"status": STATUS_PRUNED, "loss": self.intermediate.get(step), "pruned_at": step}


def takes_context(fn: Callable[..., Any]) -> bool:
    """Whether an objective accepts a second positional argument (the trial context)."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
