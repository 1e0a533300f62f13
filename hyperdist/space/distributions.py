"""The distribution families of a search space: their validated parameters, prior sampling and support.

Every family is described by one frozen `Distribution`, which is plain data (it round-trips through
JSON), so the coordinator, the workers and the algorithms all agree on it without pickling code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperdist.errors import SpaceError
from hyperdist.space.expr import Arithmetic

# family name -> (parameter names in hyperopt's positional order)
FAMILIES: dict[str, tuple[str, ...]] = {
    "choice": ("p",),
    "randint": ("low", "high"),
    "uniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "uniformint": ("low", "high"),
    "loguniform": ("low", "high"),
    "qloguniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
}


@dataclass(frozen=True)
class Distribution:
    """One family with its parameters; `args` keeps them in `FAMILIES` order.

    Derived, read-only views (`log`, `q`, `bounded`, ...) let algorithms treat the numeric
    families uniformly: a value is drawn in a "transformed" space (log for the log families),
    optionally bounded, then mapped back and quantised as `round(x / q) * q`.
    """

    family: str
    args: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise SpaceError(f"unknown distribution family {self.family!r}; expected one of {sorted(FAMILIES)}")

    @property
    def params(self) -> dict[str, Any]:
        return dict(zip(FAMILIES[self.family], self.args))

    @property
    def categorical(self) -> bool:
        return self.family == "choice"

    @property
    def n_options(self) -> int:
        return len(self.args) if self.categorical else 0

    @property
    def log(self) -> bool:
        return self.family in ("loguniform", "qloguniform", "lognormal", "qlognormal")

    @property
    def bounded(self) -> bool:
        """Uniform families live on [low, high] (in transformed space); normal ones do not."""
        return self.family in ("randint", "uniform", "quniform", "uniformint", "loguniform", "qloguniform")

    @property
    def integer(self) -> bool:
        return self.family in ("randint", "uniformint")

    @property
    def q(self) -> float | None:
        if self.family in ("randint", "uniformint"):
            return 1.0
        return self.params.get("q")

    @property
    def transformed_bounds(self) -> tuple[float, float]:
        """Interval of the continuous draw before quantisation (transformed space)."""
        p = self.params
        if self.family == "randint":
            return p["low"] - 0.5, p["high"] - 0.5
        return p["low"], p["high"]

    @property
    def prior(self) -> tuple[float, float]:
        """Mean and standard deviation of the prior, in transformed space."""
        if self.bounded:
            lo, hi = self.transformed_bounds
            return 0.5 * (lo + hi), hi - lo
        return self.params["mu"], self.params["sigma"]

    def value_bounds(self) -> tuple[float, float]:
        """The closed interval that every sample lies in (infinite for normal families)."""
        if self.family == "randint":
            return self.params["low"], self.params["high"] - 1
        if self.family == "uniformint":
            return self.params["low"], self.params["high"]
        if not self.bounded:
            return (0.0 if self.log else -math.inf), math.inf
        lo, hi = self.transformed_bounds
        if self.log:
            lo, hi = math.exp(lo), math.exp(hi)
        q = self.q
        if q:
            lo, hi = min(lo, round(lo / q) * q), max(hi, round(hi / q) * q)
        return lo, hi

    def from_transformed(self, t: np.ndarray) -> np.ndarray:
        """Map continuous draws in transformed space to values: exp for log, then quantise/clip."""
        x = np.exp(t) if self.log else np.asarray(t, dtype=float)
        q = self.q
        if q:
            x = np.round(x / q) * q
        if self.integer:
            lo, hi = self.value_bounds()
            x = np.clip(x, lo, hi)
        return x

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Prior draws, with Hyperopt's semantics (a choice yields the option's index)."""
        if self.categorical:
            return rng.choice(self.n_options, size=size, p=np.asarray(self.args))
        if self.bounded:
            lo, hi = self.transformed_bounds
            t = rng.uniform(lo, hi, size=size)
        else:
            mu, sigma = self.prior
            t = rng.normal(mu, sigma, size=size)
        return self.from_transformed(t)

    def python_value(self, x: float) -> int | float:
        """The plain Python value stored in trial documents."""
        if self.categorical or self.integer:
            return int(round(x))
        return float(x)

    def check_value(self, label: str, value: Any) -> None:
        """Reject a value outside the support (e.g. a trial document edited by hand)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpaceError(f"parameter {label!r}: value {value!r} is not a finite number")
        if self.categorical:
            if value != int(value) or not 0 <= value < self.n_options:
                raise SpaceError(
                    f"parameter {label!r}: option index {value!r} is not an integer in [0, {self.n_options - 1}]"
                )
            return
        lo, hi = self.value_bounds()
        tol = 1e-9 * max(1.0, abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
        if not lo - tol <= value <= hi + tol or (self.log and value <= 0 and not self.q):
            raise SpaceError(f"parameter {label!r}: value {value!r} is outside [{lo}, {hi}] of {self.family}")
        if self.integer and value != int(value):
            raise SpaceError(f"parameter {label!r}: value {value!r} is not an integer ({self.family})")


def _finite(label: str, family: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        hint = "; the arguments of an hp node must be numbers, not other nodes (the flat table needs fixed " \
               "bounds)" if isinstance(value, Arithmetic) else ""
        raise SpaceError(f"hp.{family}({label!r}): {name}={value!r} is not a number{hint}")
    if not math.isfinite(float(value)):
        raise SpaceError(f"hp.{family}({label!r}): {name}={value!r} is not finite")
    return float(value)


def make(label: str, family: str, args: tuple[Any, ...]) -> Distribution:
    """Validate the arguments of `hp.<family>(label, *args)` and build the distribution."""
    names = FAMILIES[family]
    if family == "choice":
        probs = [_finite(label, "pchoice", "p", p) for p in args]
        if not probs:
            raise SpaceError(f"hp.choice({label!r}): the list of options is empty")
        if any(p < 0 or p > 1 for p in probs):
            raise SpaceError(f"hp.pchoice({label!r}): probabilities {probs} must each lie in [0, 1]")
        if abs(sum(probs) - 1.0) > 1e-6:
            raise SpaceError(f"hp.pchoice({label!r}): probabilities {probs} sum to {sum(probs):.6g}, expected 1")
        total = sum(probs)
        return Distribution("choice", tuple(p / total for p in probs))
    if len(args) != len(names):
        raise SpaceError(f"hp.{family}({label!r}): expected arguments {names}, got {args!r}")
    vals = {n: _finite(label, family, n, v) for n, v in zip(names, args)}
    if "low" in vals and vals["low"] >= vals["high"]:
        raise SpaceError(f"hp.{family}({label!r}): low={args[0]!r} must be < high={args[1]!r}")
    if "sigma" in vals and vals["sigma"] <= 0:
        raise SpaceError(f"hp.{family}({label!r}): sigma={vals['sigma']!r} must be > 0")
    if "q" in vals and vals["q"] <= 0:
        raise SpaceError(f"hp.{family}({label!r}): q={vals['q']!r} must be > 0")
    if family in ("randint", "uniformint"):
        for n in ("low", "high"):
            if vals[n] != int(vals[n]):
                raise SpaceError(f"hp.{family}({label!r}): {n}={args[names.index(n)]!r} must be an integer")
    return Distribution(family, tuple(vals[n] for n in names))
