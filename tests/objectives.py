"""Objectives the distributed tests run in real worker processes (imported by reference)."""
import json
import os
import time

from hyperdist import hp

space = {
    "x": hp.uniform("x", -5, 5),
    "branch": hp.choice("branch", [{"k": "a"}, {"k": "b", "y": hp.quniform("y", 0, 10, 1)}]),
}


def _log(cfg: dict) -> None:
    path = os.environ.get("HYPERDIST_TEST_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(cfg, sort_keys=True) + "\n")


def quadratic(cfg: dict) -> float:
    """Records every evaluation, so tests can prove no trial ran twice."""
    _log(cfg)
    delay = float(os.environ.get("HYPERDIST_TEST_DELAY", "0"))
    if delay:
        time.sleep(delay)
    extra = 0.0 if cfg["branch"]["k"] == "a" else (cfg["branch"]["y"] - 3) ** 2 / 10
    return (cfg["x"] - 1.0) ** 2 + extra
