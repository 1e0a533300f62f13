"""What tests and benchmarks may reach inside a store: its raw collections and client, and the update
documents the trial protocol sends. Not for hyperdist's own code, which goes through `Store`'s
methods; this module keeps the tests' and benchmarks' reach in one supported place, so the store's
insides can change without them reaching for private names.
"""
from __future__ import annotations

from typing import Any

from hyperdist.store.connection import Database
from hyperdist.store.trials import Report, _finish, _finish_together


def trials(store: Database) -> Any:
    """The trials collection (pymongo's Collection): to write a document as anyone could."""
    return store._trials


def experiments(store: Database) -> Any:
    """The experiments collection."""
    return store._experiments


def database(store: Database) -> Any:
    """The database (pymongo's Database): commands such as createUser, any collection by name."""
    return store._db


def client(store: Database) -> Any:
    """The client (pymongo's MongoClient), for its options."""
    return store._client


def finish_update(report: Report, token: str | None = None) -> dict:
    """The update that ends one trial with `report`'s state, result and error (TrialQueue.report)."""
    return _finish(report.state, report.result, report.error, token=token)


def finish_together(reports: list[Report]) -> tuple[dict, list[dict]]:
    """The (filter, pipeline) that ends several trials of one lease in one statement."""
    return _finish_together(reports)
