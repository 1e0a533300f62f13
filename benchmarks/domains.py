"""Test domains for the quality benchmark, each defined once for hyperdist, Hyperopt and Optuna.

A `Domain` holds:

* `space(hp)`: the search space built with either library's `hp` module (hyperdist mirrors
  Hyperopt's API, so the same function builds the hyperdist space and the equivalent Hyperopt one);
* `optuna(trial)`: the same configuration drawn with Optuna's `trial.suggest_*` API (log=True for
  log families, `step` for quantised ones, conditional parameters asked only inside their branch);
* `loss(cfg, rng)`: the objective on the evaluated configuration (`rng` supplies the noise of the
  noisy domains; every method of one seed gets the same noise stream);
* `clean(cfg)`: for noisy domains, the expected (noise-free) loss of a configuration.

The eight classic domains follow the definitions in Hyperopt's test suite
(`hyperopt/tests/unit/test_domains.py`): quadratic1, q1_lognormal, n_arms, distractor, gauss_wave,
gauss_wave2, many_dists, branin. Three more: the 6-D Hartmann function, the 4-D Rosenbrock
function, and `nested_net`, a mixed conditional space shaped like a small network search.

Optuna has no normal families and no log-quantised floats, so (noted per domain): normal(mu, s)
becomes a uniform range mu +- 3 s, lognormal(mu, s) a log-uniform range exp(mu +- 3 s),
qloguniform / qlognormal an integer log range, and pchoice a uniform categorical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Domain:
    name: str
    space: Callable[[Any], Any]
    optuna: Callable[[Any], dict]
    loss: Callable[[dict, np.random.Generator], float]
    optimum: float
    clean: Callable[[dict], float] | None = None
    note: str = ""


def _normal_range(mu: float, sigma: float) -> tuple[float, float]:
    return mu - 3 * sigma, mu + 3 * sigma


def _lognormal_range(mu: float, sigma: float) -> tuple[float, float]:
    return math.exp(mu - 3 * sigma), math.exp(mu + 3 * sigma)


# --- Hyperopt's classic domains --------------------------------------------------------------------

def quadratic1() -> Domain:
    return Domain(
        "quadratic1",
        lambda hp: {"x": hp.uniform("x", -5, 5)},
        lambda t: {"x": t.suggest_float("x", -5, 5)},
        lambda c, r: (c["x"] - 3) ** 2,
        optimum=0.0)


def q1_lognormal() -> Domain:
    lo, hi = _lognormal_range(0, 2)
    return Domain(
        "q1_lognormal",
        lambda hp: {"x": hp.lognormal("x", 0, 2)},
        lambda t: {"x": t.suggest_float("x", lo, hi, log=True)},
        lambda c, r: min(0.1 * (c["x"] - 10) ** 2, 10.0),
        optimum=0.0, note="Optuna: x log-uniform on exp(0 +- 6)")


def n_arms() -> Domain:
    means = (-1.0, 0.0)  # arm 0 is the good one; both have unit noise
    return Domain(
        "n_arms",
        lambda hp: {"x": hp.choice("x", [0, 1])},
        lambda t: {"x": t.suggest_categorical("x", [0, 1])},
        lambda c, r: float(r.normal(means[c["x"]], 1.0)),
        optimum=-1.0, clean=lambda c: means[c["x"]], note="noisy: arm losses N(-1, 1) and N(0, 1)")


def distractor() -> Domain:
    def loss(c, r):
        x = c["x"]
        return -1.0 / (1.0 + math.exp(-x)) - 2.0 * math.exp(-((x + 10.0) ** 2))
    return Domain(
        "distractor",
        lambda hp: {"x": hp.uniform("x", -15, 15)},
        lambda t: {"x": t.suggest_float("x", -15, 15)},
        loss, optimum=-2.0, note="narrow spike of depth 2 at x = -10, easy asymptote -1 to the right")


def gauss_wave() -> Domain:
    def loss(c, r):
        t = c["x"] + (math.pi if c["curve"] == 1 else 0.0)
        return -(math.sin(t) + 2.0 * math.exp(-((t / 5.0) ** 2)))
    return Domain(
        "gauss_wave",
        lambda hp: {"x": hp.uniform("x", -20, 20), "curve": hp.choice("curve", [0, 1])},
        lambda t: {"x": t.suggest_float("x", -20, 20), "curve": t.suggest_categorical("curve", [0, 1])},
        loss, optimum=-2.83526)


def gauss_wave2() -> Domain:
    # hf = 0: loss -(noise + bump(x)); hf = 1: loss -(noise + bump(x) + sin(x) * amp), amp only there.
    def clean(c):
        base = 2.0 * math.exp(-((c["x"] / 5.0) ** 2))
        return -(base + math.sin(c["x"]) * c["hf"]["amp"] if c["hf"]["kind"] == 1 else base)

    def optuna(t):
        x = t.suggest_float("x", -20, 20)
        kind = t.suggest_categorical("hf", [0, 1])
        return {"x": x, "hf": {"kind": 1, "amp": t.suggest_float("amp", 0, 1)} if kind == 1 else {"kind": 0}}
    return Domain(
        "gauss_wave2",
        lambda hp: {"x": hp.uniform("x", -20, 20),
                    "hf": hp.choice("hf", [{"kind": 0}, {"kind": 1, "amp": hp.uniform("amp", 0, 1)}])},
        optuna,
        lambda c, r: clean(c) - float(r.normal(0.0, 0.1)),
        optimum=-2.83526, clean=clean, note="noisy (sd 0.1); amp is conditional on hf = 1")


def many_dists() -> Domain:
    def space(hp):
        return {"a": hp.choice("a", [0, 1, 2]), "b": hp.randint("b", 10), "bb": hp.randint("bb", 12, 25),
                "c": hp.uniform("c", 4, 7), "d": hp.loguniform("d", -2, 0), "e": hp.quniform("e", 0, 10, 3),
                "f": hp.qloguniform("f", 0, 3, 2), "g": hp.normal("g", 4, 7), "h": hp.lognormal("h", -2, 2),
                "i": hp.qnormal("i", 0, 10, 2), "j": hp.qlognormal("j", 0, 2, 1),
                "k": hp.pchoice("k", [(0.1, 0), (0.9, 1)])}

    def optuna(t):
        return {"a": t.suggest_categorical("a", [0, 1, 2]),
                "b": t.suggest_int("b", 0, 9),
                "bb": t.suggest_int("bb", 12, 24),
                "c": t.suggest_float("c", 4, 7),
                "d": t.suggest_float("d", math.exp(-2), 1.0, log=True),
                "e": t.suggest_float("e", 0, 9, step=3),
                # round(exp(U(0, 3)) / 2) * 2 lies in {2, ..., 20}: twice a log-distributed integer
                "f": 2 * t.suggest_int("f_half", 1, 10, log=True),
                "g": t.suggest_float("g", *_normal_range(4, 7)),
                "h": t.suggest_float("h", *_lognormal_range(-2, 2), log=True),
                "i": t.suggest_float("i", *_normal_range(0, 10), step=2),
                # round(exp(N(0, 2))) lies in {0, ..., 403}: a log-distributed integer, shifted by one
                "j": t.suggest_int("j_plus1", 1, 404, log=True) - 1,
                "k": t.suggest_categorical("k", [0, 1])}

    def loss(c, r):
        z = sum(float(v) for v in c.values())
        return math.log(1e-12 + z * z)
    return Domain("many_dists", space, optuna, loss, optimum=math.log(1e-12),
                  note="12 parameters of every family; the sum must cancel to 0. Optuna: normal families as "
                       "mu +- 3 sigma ranges, q-log families as integer log ranges, pchoice as uniform")


def branin() -> Domain:
    def loss(c, r):
        x, y = c["x"], c["y"]
        return (y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 * x / math.pi - 6) ** 2 \
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10
    return Domain(
        "branin",
        lambda hp: {"x": hp.uniform("x", -5, 10), "y": hp.uniform("y", 0, 15)},
        lambda t: {"x": t.suggest_float("x", -5, 10), "y": t.suggest_float("y", 0, 15)},
        loss, optimum=0.397887)


# --- further standard functions --------------------------------------------------------------------

_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6() -> Domain:
    def loss(c, r):
        x = np.array([c[f"x{i}"] for i in range(6)])
        return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))
    return Domain(
        "hartmann6",
        lambda hp: {f"x{i}": hp.uniform(f"x{i}", 0, 1) for i in range(6)},
        lambda t: {f"x{i}": t.suggest_float(f"x{i}", 0, 1) for i in range(6)},
        loss, optimum=-3.32237, note="6-D, multimodal, on [0, 1]^6")


def rosenbrock4() -> Domain:
    def loss(c, r):
        x = [c[f"x{i}"] for i in range(4)]
        return float(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3)))
    return Domain(
        "rosenbrock4",
        lambda hp: {f"x{i}": hp.uniform(f"x{i}", -2.048, 2.048) for i in range(4)},
        lambda t: {f"x{i}": t.suggest_float(f"x{i}", -2.048, 2.048) for i in range(4)},
        loss, optimum=0.0, note="4-D curved valley: strong interactions between parameters")


def nested_net() -> Domain:
    """A mixed conditional space shaped like a small network search (minimum 0)."""
    def space(hp):
        return {"lr": hp.loguniform("lr", math.log(1e-5), math.log(1.0)),
                "drop": hp.uniform("drop", 0, 0.8),
                "arch": hp.choice("arch", [{"n": 1, "u1": hp.quniform("u1", 16, 512, 16)},
                                           {"n": 2, "u1b": hp.quniform("u1b", 16, 512, 16),
                                            "u2": hp.quniform("u2", 16, 512, 16)}])}

    def optuna(t):
        cfg = {"lr": t.suggest_float("lr", 1e-5, 1.0, log=True), "drop": t.suggest_float("drop", 0, 0.8)}
        if t.suggest_categorical("arch", [0, 1]) == 0:
            cfg["arch"] = {"n": 1, "u1": t.suggest_float("u1", 16, 512, step=16)}
        else:
            cfg["arch"] = {"n": 2, "u1b": t.suggest_float("u1b", 16, 512, step=16),
                           "u2": t.suggest_float("u2", 16, 512, step=16)}
        return cfg

    def loss(c, r):
        a = c["arch"]
        base = (math.log10(c["lr"]) + 2.5) ** 2 / 4 + (c["drop"] - 0.3) ** 2
        if a["n"] == 1:  # the one-layer branch is easy but can only reach 0.3
            return base + 0.3 + ((a["u1"] - 256) / 256) ** 2
        return base + ((a["u1b"] - 384) / 256) ** 2 + ((a["u2"] - 64) / 256) ** 2
    return Domain("nested_net", space, optuna, loss, optimum=0.0,
                  note="conditional: a choice of two branches with 1 and 2 quantised parameters")


DOMAINS: dict[str, Domain] = {d.name: d for d in (f() for f in (
    quadratic1, q1_lognormal, n_arms, distractor, gauss_wave, gauss_wave2, many_dists, branin,
    hartmann6, rosenbrock4, nested_net))}
