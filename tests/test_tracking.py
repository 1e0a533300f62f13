"""The mirror between a search and a tracker, with a tracker of the test's own (any object with
TrialLog's methods may be given as `log=`): it is down for a while, then answers again."""
from __future__ import annotations

import logging
import threading

from hyperdist import Trials, fmin, hp


class FlakyTracker:
    """Refuses every call until `up` is set, then keeps what it is given."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.logged: dict[int, object] = {}
        self.refused = 0
        self.closed: str | None = None

    def _answer(self) -> None:
        if not self.up.is_set():
            self.refused += 1
            raise ConnectionError("tracker unreachable")

    def open(self, exp_key, info):
        self._answer()
        return set()

    def log(self, record):
        self._answer()
        self.logged[record.tid] = record

    def close(self, state):
        self._answer()
        self.closed = state


def test_trials_finished_while_the_tracker_is_down_are_logged_when_it_answers(caplog, monkeypatch):
    from hyperdist.integrations.tracking import Mirror

    monkeypatch.setattr(Mirror, "RETRY_FIRST", 0.05)
    tracker = FlakyTracker()

    def objective(cfg):
        if len(trials.trials) == 6:  # halfway through, the tracker comes back
            tracker.up.set()
        return (cfg["x"] - 1) ** 2

    trials = Trials()
    with caplog.at_level(logging.WARNING, logger="hyperdist.tracking"):
        fmin(objective, {"x": hp.uniform("x", -3, 3), "c": hp.choice("c", ["p", "q"])}, max_evals=12, trials=trials,
             rstate=0, show_progressbar=False, log=tracker)
    assert tracker.refused >= 1 and tracker.closed == "done"
    assert sorted(tracker.logged) == list(range(12))  # none lost, none twice
    assert all(r.params["c"] in ("p", "q") and r.status == "ok" for r in tracker.logged.values())
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("cannot log to the tracker (ConnectionError: tracker unreachable)" in w for w in warnings) == 1
    assert any("the tracker answers again" in w for w in warnings)
