"""`fmin`: Hyperopt's minimisation loop, in one process.

suggest (algorithm) -> evaluate (objective) -> record (Trials) -> check stop rules, until done.
With `MongoTrials` the same call hands the loop to a coordinator and worker processes instead.
The loop's own bookkeeping (counts, best loss) reads what `Trials` keeps up to date, so it costs
the same per trial whatever the history's length.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
import sys
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hyperdist.algorithms import tpe
from hyperdist.errors import (AllTrialsFailed, HyperdistError, InvalidAnnotatedParameter, InvalidLoss, InvalidResultStatus,
                     InvalidTrial, SpaceError)
from hyperdist.space.expr import Arithmetic
from hyperdist.local.progress import ProgressBar
from hyperdist.objective.evaluation import Outcome, run_in_process
from hyperdist.objective.pruning import TrialContext, make_pruner, takes_context
from hyperdist.objective.result import STATUS_FAIL, exception_error
from hyperdist.space.compiled import SearchSpace, compile_space, space_eval
from hyperdist.integrations.tracking import Mirror, make_log, record_from_trial
from hyperdist.local.trials import JOB_STATE_NEW, Trials
from hyperdist.store.document import ExperimentState


def fmin(
    fn: Callable[..., Any],
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

    `max_evals` counts the history of `trials` (but not the trials that raised, as in Hyperopt),
    so calling again with a larger value continues a search. `space="annotated"` takes the space
    from fn's argument annotations. `points_to_evaluate` (with trials=None) are evaluated first, in
    addition to `max_evals` new trials. With `return_argmin=False` the best point is returned
    through `space_eval`. `pruner` ("median", "asha", or a pruner from hyperdist.objective.pruning) stops
    trials whose objective takes a second argument and reports progress through it.
    `log="mlflow"` (or a hyperdist.integrations.tracking.TrialLog) logs each finished trial to a tracker.
    """
    max_evals = _check_arguments(fn, max_evals, timeout, loss_threshold, max_queue_len, points_to_evaluate,
                                 early_stop_fn, pass_expr_memo_ctrl)
    if isinstance(space, str) and space == "annotated":
        if allow_trials_fmin and hasattr(trials, "fmin"):
            raise HyperdistError('fmin: space="annotated" works with Trials only: workers import the objective '
                                 "by name, so pass the space itself with MongoTrials")
        fn, space = _annotated(fn)
    algo = algo or tpe.suggest
    compiled = compile_space(space)
    rng = _as_generator(rstate)
    if allow_trials_fmin and trials is not None and hasattr(trials, "fmin"):
        return trials.fmin(fn, space, algo=algo, max_evals=max_evals, timeout=timeout,
                           loss_threshold=loss_threshold, rstate=rng, return_argmin=return_argmin,
                           show_progressbar=show_progressbar, early_stop_fn=early_stop_fn,
                           points_to_evaluate=points_to_evaluate, pruner=pruner, log=log)
    if trials is None:
        if trials_save_file and os.path.exists(trials_save_file):
            trials = Trials.load(trials_save_file, compiled.hash)
        else:
            trials = generate_trials_to_calculate(points_to_evaluate or [])
    elif points_to_evaluate:
        warnings.warn("fmin: points_to_evaluate is ignored because trials was given (as in Hyperopt); "
                      "pass trials=generate_trials_to_calculate(points) to evaluate them", stacklevel=2)
    pending = [t["tid"] for t in trials.trials if t["state"] == JOB_STATE_NEW]
    for tid in pending:
        _check_point(compiled, trials.by_tid(tid)["params"])
    # as in Hyperopt: max_evals minus the trials already there, plus the points waiting to be evaluated
    to_run = max(0, max_evals - (len(trials) - len(pending)))
    chosen_pruner, tlog = make_pruner(pruner), make_log(log)
    mirror = Mirror(tlog, compiled, trials.exp_key, {"algo": getattr(algo, "__module__", "custom"),
                                                     "max_evals": max_evals if max_evals < sys.maxsize else None,
                                                     "pruner": getattr(chosen_pruner, "name", None)}) if tlog else None
    loop = _Loop(fn, compiled, trials, catch_eval_exceptions, chosen_pruner, show_progressbar,
                 None if max_evals == sys.maxsize else len(trials) + to_run, mirror)
    ended = ExperimentState.STOPPED  # what the tracker is told if an exception (Ctrl-C, the objective's error) ends the loop
    try:
        loop.run(algo, rng, pending, to_run, max_queue_len, timeout, loss_threshold, early_stop_fn,
                 trials_save_file)
        ended = ExperimentState.DONE
    finally:
        loop.bar.close()
        if mirror is not None:
            mirror.close(ended)
    if return_argmin:
        if len(trials) == 0:
            raise AllTrialsFailed("fmin: there are no evaluated trials, so there is no argmin")
        return trials.argmin
    return space_eval(compiled, trials.argmin) if len(trials) else None


class _Loop:
    """One fmin call's state: what to evaluate next and the stop rules, checked after each batch."""

    def __init__(self, fn: Callable, space: SearchSpace, trials: Trials, catch: bool, pruner: Any,
                 show: bool, total: int | None, mirror: Mirror | None = None) -> None:
        self.fn, self.space, self.trials, self.catch, self.pruner = fn, space, trials, catch, pruner
        self.mirror = mirror  # a tracker told of each finished trial (hyperdist/integrations/tracking.py)
        self.with_context = takes_context(fn)
        self.bar = ProgressBar(total, show, initial=trials.n_finished)
        self.bar.update(trials.n_finished, trials.best_loss, trials.outcome_counts)

    def run(self, algo: Callable, rng: np.random.Generator, pending: list[int], to_run: int, queue: int,
            timeout: float | None, loss_threshold: float | None, early_stop_fn: Callable | None,
            save_file: str) -> None:
        trials, started, queued = self.trials, time.monotonic(), 0
        stop_state: list = []
        while pending or queued < to_run:
            if timeout is not None and time.monotonic() - started >= timeout:
                return
            if pending:
                batch, pending = pending[:queue], pending[queue:]
            else:
                ids = trials.new_trial_ids(min(queue, to_run - queued))
                seed = int(rng.integers(2**31 - 1))
                # a space without parameters (a constant) has one point: nothing to suggest
                suggested = algo(ids, self.space, trials, seed) if len(self.space) else [{} for _ in ids]
                if not suggested:  # an algorithm with nothing left to propose ends the search
                    return
                for tid, params in zip(ids, suggested):
                    trials.insert(tid, params, self.space.labels)
                batch = ids[:len(suggested)]
                queued += len(batch)
            for tid in batch:
                try:
                    self.evaluate(tid)
                finally:
                    if self.mirror is not None:
                        self.mirror.add(record_from_trial(trials.by_tid(tid), self.space))
                if save_file:
                    trials.save(save_file, self.space.hash)
            best = trials.best_loss
            self.bar.update(trials.n_finished, best, trials.outcome_counts)
            if early_stop_fn is not None:
                stop, stop_state = early_stop_fn(trials, *stop_state)
                if stop:
                    return
            if loss_threshold is not None and best is not None and best < loss_threshold:
                return

    def evaluate(self, tid: int) -> None:
        """One trial through the path every search uses (objective/evaluation.py); the results stay
        Python objects, as in Hyperopt's in-memory Trials, and the objective's exceptions are
        re-raised unless `catch_eval_exceptions`."""
        trials = self.trials
        params = trials.by_tid(tid)["params"]
        trials.start(tid)
        self.bar.clear()
        ctx = TrialContext(tid, self.pruner, trials.peers(tid), functools.partial(trials.report_intermediate, tid)) \
            if self.with_context else None
        try:
            try:
                config = self.space.eval(params)
            except Exception as exc:
                outcome = Outcome({"status": STATUS_FAIL}, exception_error(exc), exc)
            else:
                outcome = run_in_process(self.fn, config, None, ctx, storable=False, contain_exits=False,
                                             keep=True)
        except KeyboardInterrupt:
            trials.finish(tid, {"status": STATUS_FAIL}, {"type": "Interrupted", "message": "interrupted by the user"})
            raise
        finally:
            self.bar.draw()
        trials.finish(tid, outcome.result, outcome.error)
        if outcome.exception is not None:  # the objective's own failure: recorded, re-raised unless asked to catch
            if not self.catch:
                raise outcome.exception
            return
        refused = _refused(outcome.returned, outcome.error)
        if refused is not None and not self.catch:
            raise refused


def _refused(raw: Any, error: Mapping[str, Any] | None) -> Exception | None:
    """The exception Hyperopt raises for what the objective returned: a status it does not know, or
    status ok without a number as loss. (A NaN or infinite loss it keeps; hyperdist records an error
    trial and goes on.)"""
    if error is None:
        return None
    text = repr(raw) if len(repr(raw)) <= 120 else repr(raw)[:117] + "..."
    said = f"the objective returned {text}: {error['message']}"
    if error["type"] == "InvalidResult":  # its message may already name what was returned
        return InvalidResultStatus(raw, f"the {error['message']}" if error["message"].startswith("objective returned")
                                   else said)
    loss = raw.get("loss") if isinstance(raw, Mapping) else raw
    if error["type"] == "InvalidLoss" and not (isinstance(loss, numbers.Real) and not isinstance(loss, bool)):
        return InvalidLoss(raw, said)
    return None


def generate_trials_to_calculate(points: Sequence[Mapping[str, Any]]) -> Trials:
    """A `Trials` holding `points` (`{label: value}`, a choice by its option index) as new trials,
    which `fmin(..., trials=...)` evaluates before suggesting any, in addition to `max_evals`."""
    if not isinstance(points, (list, tuple)):
        raise InvalidTrial("generate_trials_to_calculate: expected a list of {label: value} dicts, got", points)
    trials = Trials()
    for tid, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise InvalidTrial(f"points_to_evaluate[{tid}] should be a {{label: value}} dict, got", point)
        trials.insert(tid, point)
    return trials


def _annotated(fn: Callable[..., Any]) -> tuple[Callable[[Mapping[str, Any]], Any], dict[str, Any]]:
    """Hyperopt's `space="annotated"`: fn's arguments annotated with hp expressions form the space,
    and fn is called with them as keyword arguments."""
    spec = inspect.getfullargspec(fn)
    annotations = {k: v for k, v in spec.annotations.items() if k != "return"}
    for name in spec.args + spec.kwonlyargs:
        if name not in annotations:
            raise InvalidAnnotatedParameter(
                name, f'fmin(space="annotated"): argument {name!r} of {getattr(fn, "__name__", fn)} has no '
                      f'annotation; annotate every argument with an hp expression, e.g. {name}: hp.uniform("{name}", 0, 1)')
    for name, node in annotations.items():
        if not isinstance(node, Arithmetic):
            hint = " (annotations are strings under `from __future__ import annotations`: leave it out of " \
                   "this file)" if isinstance(node, str) else ""
            raise InvalidAnnotatedParameter(
                node, f'fmin(space="annotated"): {getattr(fn, "__name__", fn)}\'s annotation of {name!r} is '
                      f'{node!r}; annotate every argument with an hp expression, e.g. x: hp.uniform("x", 0, 1)'
                      + hint)

    @functools.wraps(fn)
    def call_with_keywords(config: Mapping[str, Any]) -> Any:
        return fn(**config)
    call_with_keywords.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("config", inspect.Parameter.POSITIONAL_ONLY)])
    return call_with_keywords, dict(annotations)


def _check_arguments(fn: Any, max_evals: Any, timeout: Any, loss_threshold: Any, max_queue_len: Any,
                     points: Any, early_stop_fn: Any, pass_expr_memo_ctrl: Any) -> int:
    """Every argument checked before anything runs, so a typo never costs an evaluation (the timeout and
    loss_threshold messages are Hyperopt's, word for word)."""
    if not callable(fn):
        raise HyperdistError(f"fmin: fn={fn!r} is not callable")
    if pass_expr_memo_ctrl:
        raise HyperdistError("fmin: pass_expr_memo_ctrl is not supported: spaces are data, so the objective "
                             "receives the configuration (and, if it takes a second argument, a trial context)")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not float(timeout) > 0):
        raise HyperdistError(f"The timeout argument should be None or a positive value. Given value: {timeout}")
    if loss_threshold is not None and (isinstance(loss_threshold, bool) or not isinstance(loss_threshold, numbers.Real)
                                       or math.isnan(loss_threshold)):
        raise HyperdistError(f"The loss_threshold argument should be None or a numeric value. Given value: "
                             f"{loss_threshold}")
    if isinstance(max_queue_len, bool) or not isinstance(max_queue_len, (int, np.integer)) or max_queue_len < 1:
        raise HyperdistError(f"fmin: max_queue_len={max_queue_len!r} must be a positive integer")
    if early_stop_fn is not None and not callable(early_stop_fn):
        raise HyperdistError(f"fmin: early_stop_fn={early_stop_fn!r} is not callable")
    if points is not None and not (isinstance(points, (list, tuple)) and all(isinstance(p, Mapping) for p in points)):
        raise HyperdistError(f"fmin: points_to_evaluate={points!r} must be a list of {{label: value}} dicts")
    if max_evals is None:
        if timeout is None and loss_threshold is None and early_stop_fn is None:
            raise HyperdistError("fmin: give max_evals (or a timeout, loss_threshold or early_stop_fn)")
        return sys.maxsize
    if isinstance(max_evals, bool) or not isinstance(max_evals, (int, np.integer)) or max_evals < 1:
        raise HyperdistError(f"fmin: max_evals={max_evals!r} must be a positive integer")
    return int(max_evals)


def _check_point(space: SearchSpace, point: Mapping[str, Any]) -> None:
    """A point to evaluate must give every active parameter a number (a choice an existing option);
    values outside a parameter's range are evaluated, as in Hyperopt."""
    try:
        space.validate(point, support=False)
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
