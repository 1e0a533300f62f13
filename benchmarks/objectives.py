"""Objectives for the distributed benchmark: the machinery alone (null) and a short evaluation."""
import time


def null(cfg: dict) -> float:
    return float(cfg["a"]) ** 2


def sleep50(cfg: dict) -> float:
    time.sleep(0.05)
    return float(cfg["a"]) ** 2
