"""`MongoTrials`: Hyperopt's distributed history, backed by hyperdist's store and coordinator.

`fmin(fn, space, trials=MongoTrials(url, exp_key=...))` runs the coordinator in the calling process;
workers started with `hyperdist worker --mongo URL --exp KEY --allow MODULE` evaluate the trials.
As in Hyperopt, the same `exp_key` continues the same history and `max_evals` counts all of it.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.errors import AllTrialsFailed, HyperdistError
from hyperdist.local.progress import ProgressBar
from hyperdist.objective.pruning import pruner_options
from hyperdist.objective.reference import reference_of
from hyperdist.distributed.session import Session, stop_signals
from hyperdist.space.compiled import compile_space, space_eval
from hyperdist.store import ExperimentState, Store, TrialState, parse_url
from hyperdist.integrations.tracking import make_log, store_mirror
from hyperdist.local.trials import Trials


class MongoTrials(Trials):
    exp_key: str  # always set: "default" when none is given

    def __init__(self, url: str, exp_key: str | None = None, *, workers: int = 1, db: str | None = None,
                 refresh: bool = True, store: Store | None = None) -> None:
        super().__init__(exp_key or "default")
        mongo_url, db_name = parse_url(url, db)
        self.store = store or Store(mongo_url, db=db_name)
        self.workers = workers
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        """Reload the experiment's history from the database."""
        self._reset()
        for rec in self.store.records(self.exp_key):
            trial = self.insert(rec.tid, rec.params)
            if rec.finished_state:  # a trial that raised has an error; a "fail" result is done
                self.finish(rec.tid, rec.result or {"status": "fail"}, rec.error)
            elif rec.state == TrialState.RUNNING:
                self.start(rec.tid)
            trial["owner"], trial["book_time"] = rec.owner, rec.claimed

    def fmin(self, fn: Callable[[Any], Any], space: Any, *, algo: Callable, max_evals: int,
             timeout: float | None, loss_threshold: float | None, rstate: np.random.Generator,
             return_argmin: bool, show_progressbar: bool, early_stop_fn: Callable | None,
             points_to_evaluate: Any = None, pruner: Any = None, log: Any = None) -> Any:
        if points_to_evaluate:
            raise HyperdistError("points_to_evaluate is not supported with MongoTrials yet")
        compiled = compile_space(space)
        coordinator = Coordinator(self.store, self.exp_key, compiled, algo,
                                  StopRules(max_evals, timeout, loss_threshold, early_stop_fn),
                                  CoordinatorConfig(seed=int(rstate.integers(2**31 - 1)), workers=self.workers),
                                  objective=reference_of(fn), algo_info={"name": getattr(algo, "__module__", "custom")},
                                  options=pruner_options(pruner))
        tlog = make_log(log)
        coordinator.start(resume=True)
        mirror = None
        if tlog is not None:
            mirror = store_mirror(tlog, self.store, self.exp_key, compiled,
                                  {"objective": coordinator.objective, "max_evals": max_evals, "seed": coordinator.seed})
            coordinator.on_finished = mirror.finished
        session = Session(coordinator, ProgressBar(max_evals, show_progressbar, initial=coordinator.finished),
                          resume_hint="run fmin again with the same exp_key to continue")
        ended = ExperimentState.STOPPED
        try:
            with stop_signals():
                session.run()
            ended = ExperimentState.DONE
        finally:
            if mirror is not None:
                mirror.close(ended)
        if show_progressbar:
            sys.stderr.write(session.summary()[0] + "\n")
        self.refresh()
        if return_argmin:
            return self.argmin
        try:
            return space_eval(compiled, self.argmin)
        except AllTrialsFailed:
            return None
