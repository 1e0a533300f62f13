"""The `hp.*` constructors: Hyperopt's space language, validated at construction time.

A `Param` node is a labelled distribution; `choice`/`pchoice` nodes also carry their options, which
may contain further nodes (conditional parameters). Everything else in a space is a literal, an
expression over nodes (hyperdist/space/expr.py) or a dict / list / tuple of sub-spaces.
"""
from __future__ import annotations

from typing import Any, Sequence

from hyperdist.space.distributions import Distribution, make
from hyperdist.errors import SpaceError
from hyperdist.space.expr import Arithmetic

__all__ = [
    "Param", "choice", "pchoice", "randint", "uniform", "quniform", "uniformint", "loguniform",
    "qloguniform", "normal", "qnormal", "lognormal", "qlognormal",
]


class Param(Arithmetic):
    """A labelled hyperparameter: the leaf (or, for a choice, the branching point) of a space.

    Arithmetic on it (`1 + hp.uniform(...)`) builds an expression evaluated with the configuration."""

    __slots__ = ("label", "dist", "options")

    def __init__(self, label: str, dist: Distribution, options: tuple[Any, ...] | None = None) -> None:
        self.label = label
        self.dist = dist
        self.options = options

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.dist.params.items() if k != "p")
        if self.options is not None:
            return f"hp.choice({self.label!r}, {list(self.options)!r})"
        return f"hp.{self.dist.family}({self.label!r}, {args})"


def _label(label: Any, family: str) -> str:
    if not isinstance(label, str) or not label:
        raise SpaceError(f"hp.{family}: label {label!r} must be a non-empty string")
    return label


def _numeric(family: str, label: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Param:
    from hyperdist.space.distributions import FAMILIES

    label = _label(label, family)
    names = FAMILIES[family]
    values = list(args)
    for name in names[len(values):]:
        if name not in kwargs:
            raise SpaceError(f"hp.{family}({label!r}): missing argument {name!r}; expected {names}")
        values.append(kwargs.pop(name))
    if kwargs or len(values) != len(names):
        raise SpaceError(f"hp.{family}({label!r}): unexpected arguments {args!r} {kwargs!r}; expected {names}")
    return Param(label, make(label, family, tuple(values)))


def choice(label: str, options: Sequence[Any]) -> Param:
    """Pick one option uniformly; the trial stores the option's index."""
    label = _label(label, "choice")
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise SpaceError(f"hp.choice({label!r}): options {options!r} must be a list or tuple")
    if not options:
        raise SpaceError(f"hp.choice({label!r}): the list of options is empty")
    n = len(options)
    return Param(label, make(label, "choice", tuple(1.0 / n for _ in options)), tuple(options))


def pchoice(label: str, p_options: Sequence[tuple[float, Any]]) -> Param:
    """Pick option i with probability p_i; `p_options` is a list of (probability, option)."""
    label = _label(label, "pchoice")
    if not p_options:
        raise SpaceError(f"hp.pchoice({label!r}): the list of options is empty")
    try:
        probs, options = zip(*p_options)
    except (TypeError, ValueError):
        raise SpaceError(f"hp.pchoice({label!r}): expected a list of (probability, option) pairs") from None
    return Param(label, make(label, "choice", tuple(probs)), tuple(options))


def randint(label: str, *args: Any, **kwargs: Any) -> Param:
    """An integer in [0, upper) or [low, high), as in Hyperopt."""
    if len(args) + len(kwargs) == 1:
        upper = args[0] if args else kwargs.get("upper", kwargs.get("high"))
        return _numeric("randint", label, (0, upper), {})
    if "upper" in kwargs:
        kwargs["high"] = kwargs.pop("upper")
    return _numeric("randint", label, args, kwargs)


def uniform(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("uniform", label, args, kwargs)


def quniform(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("quniform", label, args, kwargs)


def uniformint(label: str, *args: Any, **kwargs: Any) -> Param:
    """round(uniform(low, high)) as an int (Hyperopt's quniform with q=1)."""
    kwargs.pop("q", None)
    return _numeric("uniformint", label, args, kwargs)


def loguniform(label: str, *args: Any, **kwargs: Any) -> Param:
    """exp(uniform(low, high)): the bounds are given in log space, as in Hyperopt."""
    return _numeric("loguniform", label, args, kwargs)


def qloguniform(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("qloguniform", label, args, kwargs)


def normal(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("normal", label, args, kwargs)


def qnormal(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("qnormal", label, args, kwargs)


def lognormal(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("lognormal", label, args, kwargs)


def qlognormal(label: str, *args: Any, **kwargs: Any) -> Param:
    return _numeric("qlognormal", label, args, kwargs)
