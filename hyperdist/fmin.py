"""`fmin`: Hyperopt's minimisation loop, in one process.

suggest (algorithm) -> evaluate (objective) -> record (Trials) -> check stop rules, until done.
With `MongoTrials` the same call hands the loop to a coordinator and worker processes instead.
"""
from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .algorithms import tpe
from .errors import AllTrialsFailed, HyperdistError, SpaceError
from .progress import ProgressBar
from .pruning import TrialContext, TrialPruned, make_pruner, takes_context
from .result import exception_error, normalize
from .space import SearchSpace, compile_space, space_eval
from .tracking import Mirror, make_log, record_from_trial
from .trials import JOB_STATE_DONE, JOB_STATE_ERROR, Trials


def fmin(
    fn: Callable[[Any], Any],
    space: Any,
    algo: Callable[..., list[dict]] | None = None,
    max_evals: int | None = None,
    timeout: float | None = None,
    loss_threshold: float | None = None,
    trials: Trials | None = None,
    rstate: np.random.Generator | int | None = None,
    allow_trials_fmin: bool = True,
    pass_expr_memo_ctrl: Any = None,
    catch_eval_exceptions: bool = False,
    verbose: bool = True,
    return_argmin: bool = True,
    points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
    max_queue_len: int = 1,
    show_progressbar: bool = True,
    early_stop_fn: Callable[..., tuple[bool, list]] | None = None,
    trials_save_file: str = "",
    pruner: Any = None,
    log: Any = None,
) -> Any:
    """Minimise `fn` over `space`; returns the best assignment (choices as indices), as Hyperopt does.

    `max_evals` counts the whole history of `trials`, so calling again with a larger value continues
    a search. With `return_argmin=False` the best point is returned through `space_eval`.
    `pruner` ("median", "asha", or a pruner from hyperdist.pruning) stops trials whose objective
    takes a second argument and reports progress through it (see hyperdist/pruning.py).
    `log="mlflow"` (or a hyperdist.tracking.TrialLog) logs each finished trial to a tracker.
    """
    if not callable(fn):
        raise HyperdistError(f"fmin: fn={fn!r} is not callable")
    algo = algo or tpe.suggest
    max_evals = _check_max_evals(max_evals, timeout, loss_threshold, early_stop_fn)
    if max_queue_len < 1:
        raise ValueError(f"fmin: max_queue_len={max_queue_len!r} must be >= 1")
    compiled = compile_space(space)
    rng = _as_generator(rstate)
    if trials is None:
        trials = Trials.load(trials_save_file, compiled.hash) if trials_save_file and os.path.exists(trials_save_file) else Trials()
    if allow_trials_fmin and hasattr(trials, "fmin"):
        return trials.fmin(fn, space, algo=algo, max_evals=max_evals, timeout=timeout,
                           loss_threshold=loss_threshold, rstate=rng, return_argmin=return_argmin,
                           show_progressbar=show_progressbar, early_stop_fn=early_stop_fn,
                           points_to_evaluate=points_to_evaluate, pruner=pruner, log=log)
    chosen_pruner = make_pruner(pruner)
    tlog = make_log(log)
    mirror = Mirror(tlog, compiled, trials.exp_key, {"algo": getattr(algo, "__module__", "custom"),
                                                     "max_evals": max_evals if max_evals < sys.maxsize else None,
                                                     "pruner": getattr(chosen_pruner, "name", None)}) if tlog else None
    pending_points = [dict(p) for p in (points_to_evaluate or ()) if len(trials) == 0]
    for point in pending_points:
        _check_point(compiled, point)

    started = time.monotonic()
    bar = ProgressBar(max_evals if max_evals < sys.maxsize else None, show_progressbar, initial=_finished(trials))
    bar.update(_finished(trials), _best_loss(trials))
    stop_state: list = []
    ended = "stopped"  # what the tracker is told if an exception (Ctrl-C, the objective's error) ends the loop
    try:
        while len(trials) < max_evals:
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            n = min(max_queue_len, max_evals - len(trials))
            ids = trials.new_trial_ids(n)
            if pending_points:
                batch, pending_points = pending_points[:n], pending_points[n:]
            else:
                batch = algo(ids, compiled, trials, int(rng.integers(2**31 - 1)))
            for tid, params in zip(ids, batch):
                trial = trials.insert(tid, params, compiled.labels)
                try:
                    _evaluate(fn, compiled, trials, tid, params, catch_eval_exceptions, bar, chosen_pruner)
                finally:
                    if mirror is not None:
                        mirror.add(record_from_trial(trial, compiled))
                if trials_save_file:
                    trials.save(trials_save_file, compiled.hash)
            best = _best_loss(trials)
            bar.update(_finished(trials), best)
            if loss_threshold is not None and best is not None and best <= loss_threshold:
                break
            if early_stop_fn is not None:
                stop, stop_state = early_stop_fn(trials, *stop_state)
                if stop:
                    break
        ended = "done"
    finally:
        bar.close()
        if mirror is not None:
            mirror.close(ended)
    if return_argmin:
        if len(trials) == 0:
            raise AllTrialsFailed("fmin: there are no trials, so there is no argmin")
        return trials.argmin
    try:
        return space_eval(compiled, trials.argmin)
    except AllTrialsFailed:
        return None


def _evaluate(fn: Callable, space: SearchSpace, trials: Trials, tid: int, params: Mapping[str, Any],
              catch: bool, bar: ProgressBar, pruner: Any) -> None:
    trials.start(tid)
    bar.clear()
    ctx = TrialContext(tid, pruner, trials.peers(tid), functools.partial(trials.report_intermediate, tid)) \
        if takes_context(fn) else None
    try:
        if ctx is None:
            result, error = normalize(fn(space.eval(params)))
        else:
            try:
                raw = fn(space.eval(params), ctx)
            except TrialPruned:
                ctx.pruned_at = max(ctx.intermediate, default=0)
            result, error = (ctx.pruned_result(), None) if ctx.pruned_at is not None else normalize(raw)
    except KeyboardInterrupt:
        trials.finish(tid, {"status": "fail"}, {"type": "Interrupted", "message": "interrupted by the user"})
        raise
    except Exception as exc:  # the objective's own failure: recorded, re-raised unless asked to catch
        trials.finish(tid, {"status": "fail"}, exception_error(exc))
        if not catch:
            raise
        return
    finally:
        bar.draw()
    trials.finish(tid, result, error)


def _check_max_evals(max_evals: Any, timeout: Any, loss_threshold: Any, early_stop_fn: Any) -> int:
    if max_evals is None:
        if timeout is None and loss_threshold is None and early_stop_fn is None:
            raise HyperdistError("fmin: give max_evals (or a timeout, loss_threshold or early_stop_fn)")
        return sys.maxsize
    if isinstance(max_evals, bool) or not isinstance(max_evals, (int, np.integer)) or max_evals < 1:
        raise HyperdistError(f"fmin: max_evals={max_evals!r} must be a positive integer")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise HyperdistError(f"fmin: timeout={timeout!r} must be a positive number of seconds")
    return int(max_evals)


def _check_point(space: SearchSpace, point: Mapping[str, Any]) -> None:
    try:
        space.validate(point)
    except SpaceError as exc:
        raise SpaceError(f"points_to_evaluate: {exc}") from None


def _as_generator(rstate: Any) -> np.random.Generator:
    if isinstance(rstate, np.random.Generator):
        return rstate
    if isinstance(rstate, np.random.RandomState):
        return np.random.default_rng(rstate.randint(2**31 - 1))
    if rstate is None:
        seed = os.environ.get("HYPERDIST_FMIN_SEED") or os.environ.get("HYPEROPT_FMIN_SEED")
        return np.random.default_rng(int(seed) if seed else None)
    if isinstance(rstate, (int, np.integer)) and not isinstance(rstate, bool):
        return np.random.default_rng(int(rstate))
    raise HyperdistError(f"fmin: rstate={rstate!r} must be a numpy Generator or an int seed")


def _finished(trials: Trials) -> int:
    return sum(1 for t in trials.trials if t["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR))


def _best_loss(trials: Trials) -> float | None:
    losses = [x for x in trials.losses() if x is not None and math.isfinite(x)]
    return min(losses) if losses else None
