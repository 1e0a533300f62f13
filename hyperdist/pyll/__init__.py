"""`hyperdist.pyll`: the names Hyperopt code imports from `hyperopt.pyll` (`scope`, `stochastic.sample`).

Hyperopt's pyll is a general graph language; in hyperdist a space is data, so `scope` offers the
fixed set of functions in hyperdist/space/expr.py and `scope.define` is refused with the reason.
"""
from hyperdist.pyll import base, stochastic
from hyperdist.pyll.base import Apply, as_apply, scope

__all__ = ["Apply", "as_apply", "base", "scope", "stochastic"]
