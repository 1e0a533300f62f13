"""A search that needs nothing but hyperdist: a noisy bowl with a conditional branch.

    hyperdist search examples/quadratic.py:objective --space examples/quadratic.py:space --max-evals 200
"""
import math
import random
import time

from hyperdist import hp

space = {
    "x": hp.uniform("x", -10, 10),
    "lr": hp.loguniform("lr", math.log(1e-5), math.log(1.0)),
    "shape": hp.choice("shape", [
        {"kind": "flat"},
        {"kind": "tilted", "tilt": hp.uniform("tilt", -1, 1)},
    ]),
}


def objective(cfg: dict) -> dict:
    time.sleep(0.05)  # pretend to train for a moment
    loss = (cfg["x"] - 0.5) ** 2 + (math.log10(cfg["lr"]) + 3) ** 2
    if cfg["shape"]["kind"] == "tilted":
        loss += abs(cfg["shape"]["tilt"] - 0.25)
    else:
        loss += 0.5
    return {"loss": loss + random.gauss(0, 0.01), "status": "ok"}
