"""Test domains for the quality benchmark, each defined once for hyperdist, Hyperopt and Optuna.

`space(hp)` builds the space with either library's `hp` module (hyperdist mirrors Hyperopt's API),
`optuna(trial)` draws the same configuration with Optuna's suggest API, and `loss(cfg, rng)` scores a
configuration. The classic domains follow the definitions in Hyperopt's test suite; Optuna has no
normal families, so those become bounded ranges covering mu +- 3 sigma (noted per domain).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class Domain:
    name: str
    space: Callable[[Any], Any]
    optuna: Callable[[Any], dict]
    loss: Callable[[dict, np.random.Generator], float]
    note: str = ""


def _lognormal_range(mu: float, sigma: float) -> tuple[float, float]:
    return math.exp(mu - 3 * sigma), math.exp(mu + 3 * sigma)


def _quadratic1():
    return Domain("quadratic1", lambda hp: {"x": hp.uniform("x", -5, 5)},
                  lambda t: {"x": t.suggest_float("x", -5, 5)},
                  lambda c, r: (c["x"] - 3) ** 2)


def _q1_lognormal():
    lo, hi = _lognormal_range(0, 2)
    return Domain("q1_lognormal", lambda hp: {"x": hp.lognormal("x", 0, 2)},
                  lambda t: {"x": t.suggest_float("x", lo, hi, log=True)},
                  lambda c, r: min(0.1 * (c["x"] - 10) ** 2, 10.0), "Optuna: x log-uniform on exp(0 +- 6)")


def _n_arms():
    return Domain("n_arms", lambda hp: {"x": hp.choice("x", [0, 1])},
                  lambda t: {"x": t.suggest_categorical("x", [0, 1])},
                  lambda c, r: float(r.normal([-1.0, 0.0][c["x"]], 1.0)), "noisy: N(-1,1) vs N(0,1)")


def _distractor():
    return Domain("distractor", lambda hp: {"x": hp.uniform("x", -15, 15)},
                  lambda t: {"x": t.suggest_float("x", -15, 15)},
                  lambda c, r: -1.0 / (1.0 + math.exp(-c["x"])) - 2 * math.exp(-(c["x"] + 10) ** 2))


def _gauss_wave():
    def loss(c, r):
        t = c["x"] + (math.pi if c["curve"] == 1 else 0.0)
        return -(math.sin(t) + 2 * math.exp(-(t / 5.0) ** 2))
    return Domain("gauss_wave", lambda hp: {"x": hp.uniform("x", -20, 20), "curve": hp.choice("curve", [0, 1])},
                  lambda t: {"x": t.suggest_float("x", -20, 20), "curve": t.suggest_categorical("curve", [0, 1])},
                  loss)


def _gauss_wave2():
    def loss(c, r):
        t = r.normal(0, 0.1) + 2 * math.exp(-(c["x"] / 5.0) ** 2)
        return -(t + math.sin(c["x"]) * c["hf"]["amp"] if c["hf"]["kind"] == 1 else t)

    def opt(t):
        x = t.suggest_float("x", -20, 20)
        kind = t.suggest_categorical("hf", [0, 1])
        return {"x": x, "hf": {"kind": kind, "amp": t.suggest_float("amp", 0, 1)} if kind else {"kind": 0}}
    return Domain("gauss_wave2", lambda hp: {"x": hp.uniform("x", -20, 20), "hf": hp.choice(
        "hf", [{"kind": 0}, {"kind": 1, "amp": hp.uniform("amp", 0, 1)}])}, opt, loss, "noisy (sd 0.1)")


def _many_dists():
    def space(hp):
        return {"a": hp.choice("a", [0, 1, 2]), "b": hp.randint("b", 10), "bb": hp.randint("bb", 12, 25),
                "c": hp.uniform("c", 4, 7), "d": hp.loguniform("d", -2, 0), "e": hp.quniform("e", 0, 10, 3),
                "f": hp.qloguniform("f", 0, 3, 2), "g": hp.normal("g", 4, 7), "h": hp.lognormal("h", -2, 2),
                "i": hp.qnormal("i", 0, 10, 2), "j": hp.qlognormal("j", 0, 2, 1),
                "k": hp.pchoice("k", [(0.1, 0), (0.9, 1)])}

    def opt(t):
        return {"a": t.suggest_categorical("a", [0, 1, 2]), "b": t.suggest_int("b", 0, 9),
                "bb": t.suggest_int("bb", 12, 24), "c": t.suggest_float("c", 4, 7),
                "d": t.suggest_float("d", math.exp(-2), 1.0, log=True), "e": t.suggest_float("e", 0, 9, step=3),
                "f": t.suggest_float("f", 2, 20, step=2), "g": t.suggest_float("g", 4 - 21, 4 + 21),
                "h": t.suggest_float("h", *_lognormal_range(-2, 2), log=True),
                "i": t.suggest_float("i", -30, 30, step=2), "j": t.suggest_float("j", 1, 403, step=1),
                "k": t.suggest_categorical("k", [0, 1])}
    return Domain("many_dists", space, opt, lambda c, r: math.log(1e-12 + sum(float(v) for v in c.values()) ** 2),
                  "Optuna: normal families as mu +- 3 sigma ranges")


def _branin():
    def loss(c, r):
        x, y = c["x"], c["y"]
        return (y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 * x / math.pi - 6) ** 2 \
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10
    return Domain("branin", lambda hp: {"x": hp.uniform("x", -5, 10), "y": hp.uniform("y", 0, 15)},
                  lambda t: {"x": t.suggest_float("x", -5, 10), "y": t.suggest_float("y", 0, 15)}, loss)


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                  [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6():
    def loss(c, r):
        x = np.array([c[f"x{i}"] for i in range(6)])
        return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))
    return Domain("hartmann6", lambda hp: {f"x{i}": hp.uniform(f"x{i}", 0, 1) for i in range(6)},
                  lambda t: {f"x{i}": t.suggest_float(f"x{i}", 0, 1) for i in range(6)}, loss,
                  "standard 6-D test function, minimum -3.32237")


def _nested_net():
    """A mixed conditional space shaped like a small network search."""
    def space(hp):
        return {"lr": hp.loguniform("lr", math.log(1e-5), math.log(1)), "drop": hp.uniform("drop", 0, 0.8),
                "arch": hp.choice("arch", [{"n": 1, "u1": hp.quniform("u1", 16, 512, 16)},
                                           {"n": 2, "u1b": hp.quniform("u1b", 16, 512, 16),
                                            "u2": hp.quniform("u2", 16, 512, 16)}])}

    def opt(t):
        cfg = {"lr": t.suggest_float("lr", 1e-5, 1, log=True), "drop": t.suggest_float("drop", 0, 0.8)}
        n = t.suggest_categorical("arch", [0, 1])
        cfg["arch"] = {"n": 1, "u1": t.suggest_float("u1", 16, 512, step=16)} if n == 0 else \
            {"n": 2, "u1b": t.suggest_float("u1b", 16, 512, step=16), "u2": t.suggest_float("u2", 16, 512, step=16)}
        return cfg

    def loss(c, r):
        a = c["arch"]
        base = (math.log10(c["lr"]) + 2.5) ** 2 / 4 + (c["drop"] - 0.3) ** 2
        if a["n"] == 1:
            return base + 0.3 + ((a["u1"] - 256) / 256) ** 2
        return base + ((a["u1b"] - 384) / 256) ** 2 + ((a["u2"] - 64) / 256) ** 2
    return Domain("nested_net", space, opt, loss, "conditional, minimum 0")


DOMAINS = {d.name: d for d in (f() for f in (_quadratic1, _q1_lognormal, _n_arms, _distractor, _gauss_wave,
                                             _gauss_wave2, _many_dists, _branin, _hartmann6, _nested_net))}
