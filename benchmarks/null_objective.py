"""An objective that does nothing, to measure the cost of the distributed machinery alone."""


def objective(cfg: dict) -> float:
    return float(cfg["a"]) ** 2
