"""Objectives for tests/test_hostile.py: results no store can hold, objectives that exit, and a
module that re-exports a dangerous function (the allow-list bypass)."""
from os import system  # noqa: F401  (what a planted reference tries to reach through this module)

from hyperdist import hp

space = {"kind": hp.choice("kind", ["ok", "big_int", "cycle", "deep", "surrogate", "key", "exit", "interrupt",
                                    "exit_none", "bad_str"])}


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


def misbehave(cfg: dict):
    kind = cfg["kind"]
    if kind == "big_int":
        return {"loss": 1.0, "extra": {"n": 2**70}}
    if kind == "cycle":
        d: dict = {"loss": 1.0}
        d["self"] = d
        return d
    if kind == "deep":
        d = {"loss": 1.0}
        node = d
        for _ in range(500):
            node["next"] = {}
            node = node["next"]
        return d
    if kind == "surrogate":
        return {"loss": 1.0, "note": "\ud800"}
    if kind == "key":
        return {"loss": 1.0, "extra": {"$where": 1}}
    if kind == "exit":
        raise SystemExit(3)
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "exit_none":
        import sys
        sys.exit()
    if kind == "bad_str":
        raise _Unprintable()
    return 0.5


def quad(cfg: dict) -> float:
    return 0.25


def _private(cfg: dict) -> float:
    return 0.0


def grabs_signals(cfg: dict) -> float:
    """Replaces the worker's SIGTERM handler (as some libraries do), then sleeps on later calls."""
    import os
    import signal
    import time

    marker = os.environ["HYPERDIST_TEST_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return 1.0
    time.sleep(30)
    return 2.0
