"""The MongoDB store: the only part of hyperdist that imports pymongo.

`Store` is one object over one database, assembled from one class per concept: the trial protocol
(trials.py `TrialQueue`), reads of the history (history.py), experiments and their coordinator lease
(experiments.py), snapshot chunks (snapshots.py), what pruners read (peers.py `PeerReads`) and the
local server's user (users.py), all on one client and one mapping of pymongo's errors
(connection.py `Database`). The stored documents' vocabulary (states, fields, the `TrialRecord`
readers get) is document.py; what tests and benchmarks may reach inside is testing.py.
"""
from __future__ import annotations

from hyperdist.store.experiments import Experiments
from hyperdist.store.history import History, outcome, trial_error_text
from hyperdist.store.peers import PeerReads, TrialPeers
from hyperdist.store.snapshots import Snapshots
from hyperdist.store.document import FINISHED, OPEN, ExperimentState, Refusal, TrialRecord, TrialState
from hyperdist.store.trials import DONE, ERROR, NEW, RUNNING, LostLease, Report, TrialQueue, storable
from hyperdist.store.url import parse_url
from hyperdist.store.users import Users

__all__ = ["DONE", "ERROR", "FINISHED", "NEW", "OPEN", "RUNNING", "ExperimentState", "LostLease", "Refusal", "Report",
           "Store", "TrialPeers", "TrialRecord", "TrialState", "outcome", "parse_url", "storable", "trial_error_text"]


class Store(TrialQueue, History, Experiments, Snapshots, PeerReads, Users):
    """One database's experiments and trials; each method is one or a few commands to the server."""
