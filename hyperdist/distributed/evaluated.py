"""What a worker keeps of the trials it evaluated: each result until the store has answered its
report (a report travels with the next claim, so several may wait), and the counts that decide
when it stops (`--max-trials`, the limit of consecutive failures)."""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field

from hyperdist.errors import redact
from hyperdist.objective.evaluation import Outcome
from hyperdist.store import Report, TrialState, storable
from hyperdist.store.history import trial_error_text

log = logging.getLogger("hyperdist.worker")


@dataclass
class Evaluated:
    """An evaluated trial whose result has not been handed in yet."""

    doc: dict
    outcome: Outcome
    started: float
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = time.monotonic() - self.started

    @functools.cached_property
    def report(self) -> Report:
        """The outcome as it will be stored (`storable`: a result too large becomes an ERROR)."""
        state = TrialState.DONE if self.outcome.ok else TrialState.ERROR
        return storable(Report(self.doc["_id"], self.doc["lease_token"], state, self.outcome.result,
                               self.outcome.error))


@dataclass
class WorkerStats:
    """The trials whose reports the store accepted, and why the worker stopped."""

    done: int = 0
    errors: int = 0
    consecutive_failures: int = 0
    reason: str = ""
    exit_code: int = 0
    last_error: str = ""

    def streak(self, unsettled: list[Evaluated]) -> int:
        """Failed trials in a row, counting those not reported yet: the limit of consecutive failures
        is checked before each trial of a prefetched batch, so a worker stops at exactly the limit."""
        n = self.consecutive_failures
        for f in unsettled:
            n = 0 if f.report.state == TrialState.DONE else n + 1
        return n

    def settle_all(self, evaluated: list[Evaluated], accepted: list[bool]) -> None:
        for one, ok in zip(evaluated, accepted):
            self.settle(one, ok)

    def settle(self, evaluated: Evaluated, accepted: bool) -> None:
        """Count and log a trial once the store has answered its report: one line per trial, saying
        what was stored (a result too large to store is an ERROR, whatever the objective returned)."""
        doc, report, seconds = evaluated.doc, evaluated.report, evaluated.seconds
        if not accepted:
            log.warning("trial %s of %s: result not accepted (the lease had expired and the trial was handed "
                        "out again, or a retried report had already been recorded)", doc.get("tid"), doc.get("exp_key"))
            return
        result = report.result or {}
        if report.state == TrialState.DONE:
            self.done += 1
            self.consecutive_failures = 0
            pruned = f" (pruned at step {result.get('pruned_at')})" if result.get("status") == "pruned" else ""
            log.info("trial %s of %s %s loss=%.6g in %.2fs%s", doc.get("tid"), doc.get("exp_key"), TrialState.DONE,
                     result.get("loss") if result.get("loss") is not None else float("nan"), seconds, pruned)
        else:
            self.errors += 1
            self.consecutive_failures += 1
            reason = trial_error_text(report.error, result)
            self.last_error = reason
            log.info("trial %s of %s %s: %s in %.2fs", doc.get("tid"), doc.get("exp_key"), TrialState.ERROR,
                     redact(reason.splitlines()[0] if reason else ""), seconds)
