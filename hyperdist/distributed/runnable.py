"""An experiment as a worker runs it: its space and its objective, loaded under the worker's allow
list from a document anyone who can write the database may have written."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hyperdist.errors import HyperdistError, ObjectiveError
from hyperdist.objective.pruning import make_pruner, takes_context
from hyperdist.objective.reference import AllowList, load_objective, parse
from hyperdist.space.compiled import SearchSpace, space_from_json


TRIAL_TIMEOUT_MAX = 30 * 86400.0  # seconds: the longest --trial-timeout, given or read from an experiment


class CannotRun(HyperdistError):
    """This worker cannot run an experiment's trials: its objective is not allowed or does not load
    here, or its document is not a valid experiment (the worker refuses it, failing no trial)."""


@dataclass
class Runnable:
    space: SearchSpace
    objective: str
    fn: Callable[..., Any] | None  # None with isolate: the child process loads it
    pruner: dict | None            # the experiment's pruner config (None: never prune)
    trial_timeout: float | None = None  # the search's --trial-timeout, for workers without their own
    with_context: bool = False  # fn takes the trial context: inspected once here, not per trial (0.15 ms each)


def checked_timeout(value: Any, what: str) -> float | None:
    """A --trial-timeout given, or read from a document anyone may have written: None, or a number of
    seconds in (0, TRIAL_TIMEOUT_MAX]; anything else fails naming `what` and the value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= TRIAL_TIMEOUT_MAX:
        shown = repr(value[:40] if isinstance(value, str) else value)[:60]
        raise HyperdistError(f"{what}={shown} is not a number of seconds in (0, {TRIAL_TIMEOUT_MAX:.0f}] (30 days)")
    return float(value)


def runnable(exp_key: str, exp_doc: dict, allow: AllowList, base: Path, isolate: bool) -> Runnable:
    """The experiment's space and objective; CannotRun for anything in the document this worker
    cannot or may not run (checked before any of its trials is touched)."""
    objective = exp_doc.get("objective")
    if not objective:
        raise CannotRun(f"experiment {exp_key!r} names no objective; it cannot run on workers")
    try:
        space = space_from_json(exp_doc.get("space"))
        options = exp_doc.get("options") or {}
        pruner = options.get("pruner") or None
        make_pruner(pruner)
        timeout = checked_timeout(options.get("trial_timeout"), "options.trial_timeout")
        parse(objective)
    except (HyperdistError, AttributeError, TypeError) as exc:
        raise CannotRun(f"invalid experiment document {exp_key!r}: {exc}") from None
    try:
        if isolate:  # the child loads it, under the same allow list; refuse here first
            fn = None
            if not allow.may_import(parse(objective), base):
                raise allow.refusal(objective, base)
        else:
            fn = load_objective(objective, allow, base)
    except ObjectiveError as exc:
        raise CannotRun(f"experiment {exp_key!r}: {exc}") from None
    return Runnable(space, objective, fn, pruner, timeout, fn is not None and takes_context(fn))
