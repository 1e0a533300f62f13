"""Arithmetic and helper functions applied to `hp` nodes: Hyperopt's `1 + hp.lognormal(...)` and
`scope.int(hp.quniform(...))`, as data.

An `Expr` is an operator name from the fixed table `OPS` and its operands (literals, `hp` nodes or
other expressions). The hp labels inside stay the parameters of the flat table; the expression is
computed only when a configuration is built (`space_eval`). In JSON an expression is
`{"$op": name, "args": [...]}` and decoding looks the name up in `OPS` alone, so a space document
can name only these functions, never code.
"""
from __future__ import annotations

import builtins
import json
import operator
from typing import Any, Callable

import numpy as np

from hyperdist.errors import SpaceError


def _switch(pos: Any, *options: Any) -> Any:  # evaluated lazily by Expr.evaluate
    return options[pos]


# name -> (function, number of arguments or None for any). Hyperopt's scope names, computed the way
# Hyperopt computes them (numpy for the math functions), plus `mod`, `abs` and `round`.
OPS: dict[str, tuple[Callable[..., Any], int | None]] = {
    "add": (operator.add, 2), "sub": (operator.sub, 2), "mul": (operator.mul, 2),
    "truediv": (operator.truediv, 2), "floordiv": (operator.floordiv, 2), "pow": (operator.pow, 2),
    "mod": (operator.mod, 2), "neg": (operator.neg, 1), "pos": (operator.pos, 1), "abs": (builtins.abs, 1),
    "lt": (operator.lt, 2), "le": (operator.le, 2), "gt": (operator.gt, 2), "ge": (operator.ge, 2),
    "getitem": (operator.getitem, 2),
    "int": (int, 1), "float": (float, 1), "round": (builtins.round, None), "len": (len, 1),
    "exp": (np.exp, 1), "log": (np.log, 1), "sqrt": (np.sqrt, 1),
    "sin": (np.sin, 1), "cos": (np.cos, 1), "tan": (np.tan, 1),
    "minimum": (np.minimum, 2), "maximum": (np.maximum, 2), "sum": (np.sum, 1),
    "min": (builtins.min, None), "max": (builtins.max, None),
    "identity": (lambda x: x, 1), "switch": (_switch, None),
}


class Arithmetic:
    """Operators shared by `hp` nodes and expressions: each builds an `Expr` instead of computing."""

    __slots__ = ()
    __array_ufunc__ = None  # numpy scalars on the left defer to our reflected operators
    __iter__ = None  # __getitem__ must not make a node look iterable

    def __add__(self, other: Any) -> "Expr": return Expr("add", (self, other))
    def __radd__(self, other: Any) -> "Expr": return Expr("add", (other, self))
    def __sub__(self, other: Any) -> "Expr": return Expr("sub", (self, other))
    def __rsub__(self, other: Any) -> "Expr": return Expr("sub", (other, self))
    def __mul__(self, other: Any) -> "Expr": return Expr("mul", (self, other))
    def __rmul__(self, other: Any) -> "Expr": return Expr("mul", (other, self))
    def __truediv__(self, other: Any) -> "Expr": return Expr("truediv", (self, other))
    def __rtruediv__(self, other: Any) -> "Expr": return Expr("truediv", (other, self))
    def __floordiv__(self, other: Any) -> "Expr": return Expr("floordiv", (self, other))
    def __rfloordiv__(self, other: Any) -> "Expr": return Expr("floordiv", (other, self))
    def __pow__(self, other: Any) -> "Expr": return Expr("pow", (self, other))
    def __rpow__(self, other: Any) -> "Expr": return Expr("pow", (other, self))
    def __mod__(self, other: Any) -> "Expr": return Expr("mod", (self, other))
    def __rmod__(self, other: Any) -> "Expr": return Expr("mod", (other, self))
    def __neg__(self) -> "Expr": return Expr("neg", (self,))
    def __pos__(self) -> "Expr": return Expr("pos", (self,))
    def __abs__(self) -> "Expr": return Expr("abs", (self,))
    def __lt__(self, other: Any) -> "Expr": return Expr("lt", (self, other))
    def __le__(self, other: Any) -> "Expr": return Expr("le", (self, other))
    def __gt__(self, other: Any) -> "Expr": return Expr("gt", (self, other))
    def __ge__(self, other: Any) -> "Expr": return Expr("ge", (self, other))
    def __getitem__(self, index: Any) -> "Expr": return Expr("getitem", (self, index))


class Expr(Arithmetic):
    """`OPS[op](*args)`, computed when a configuration is built from an assignment."""

    __slots__ = ("op", "args")

    def __init__(self, op: str, args: tuple[Any, ...]) -> None:
        if op not in OPS:
            raise SpaceError(f"unknown space function {op!r}; expected one of {sorted(OPS)}")
        arity = OPS[op][1]
        if arity is not None and len(args) != arity:
            raise SpaceError(f"scope.{op} takes {arity} argument(s), got {len(args)}: {args!r}")
        if op == "switch" and len(args) < 2:
            raise SpaceError(f"scope.switch needs an index and at least one option, got {args!r}")
        self.op, self.args = op, tuple(args)

    def __repr__(self) -> str:
        symbols = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "pow": "**",
                   "mod": "%", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
        if self.op in symbols:
            return f"({self.args[0]!r} {symbols[self.op]} {self.args[1]!r})"
        if self.op in ("neg", "pos"):
            return f"{'-' if self.op == 'neg' else '+'}{self.args[0]!r}"
        return f"scope.{self.op}({', '.join(map(repr, self.args))})"

    def evaluate(self, value_of: Callable[[Any], Any]) -> Any:
        """The expression's value, with `value_of` giving each operand's (a sub-space's) value.
        A switch computes only the option it selects, as Hyperopt's does."""
        if self.op == "switch":
            pos = value_of(self.args[0])
            options = self.args[1:]
            if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)) or not 0 <= pos < len(options):
                raise SpaceError(f"scope.switch: index {pos!r} is not an integer in [0, {len(options) - 1}]")
            return value_of(options[int(pos)])
        fn = OPS[self.op][0]
        args = [value_of(a) for a in self.args]
        _check_size(self, args)
        try:
            value = fn(*args)
        except (ArithmeticError, TypeError, ValueError, IndexError, KeyError) as exc:
            raise SpaceError(f"space expression {self!r} with operands {_short(args)} failed: {exc}") from None
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:  # every step bounded: no nested growth
            raise SpaceError(f"space expression {self!r}: an integer of {value.bit_length()} bits exceeds "
                             f"{MAX_INT_BITS}")
        return value

    def to_json(self, encode: Callable[[Any], Any]) -> dict[str, Any]:
        return {"$op": self.op, "args": [encode(a) for a in self.args]}


MAX_POWER_BITS = 100_000  # 10 ** 10_000 (33 000 bits) is instant; 10 ** 10 ** 10 would stall a worker for hours
MAX_INT_BITS = 2 * MAX_POWER_BITS  # any integer an expression step yields (the product of two bounded ones fits)
MAX_ROUND_DIGITS = 1_000  # round(5, -10**8) computes 10**(10**8) inside
MAX_REPEAT = 1_000_000


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _check_size(expr: Expr, args: list[Any]) -> None:
    """Refuse the operations whose cost has no bound in the size of the document (a space read from
    a database must not be able to stall or exhaust a worker): an integer power with a huge result
    (numpy integers wrap instead), rounding to a huge number of digits, and a repeated sequence
    with a huge length. Every integer result is bounded too (`evaluate`)."""
    if expr.op == "pow" and all(isinstance(a, int) and not isinstance(a, bool) for a in args) \
            and max(1, args[0].bit_length()) * abs(args[1]) > MAX_POWER_BITS:
        raise SpaceError(f"space expression {expr!r}: an integer power of about {args[0].bit_length() * abs(args[1])} "
                         f"bits exceeds {MAX_POWER_BITS}")
    if expr.op == "round" and len(args) > 1 and isinstance(args[1], (int, np.integer)) \
            and abs(int(args[1])) > MAX_ROUND_DIGITS:
        raise SpaceError(f"space expression {expr!r}: round to {int(args[1])} digits exceeds {MAX_ROUND_DIGITS}")
    if expr.op == "mul" and any(isinstance(a, (str, bytes, list, tuple)) for a in args):
        count = next((a for a in args if isinstance(a, (int, np.integer)) and not isinstance(a, bool)), 0)
        size = max(len(a) for a in args if isinstance(a, (str, bytes, list, tuple)))
        if int(count) * size > MAX_REPEAT:
            raise SpaceError(f"space expression {expr!r}: a sequence repeated to {int(count) * size} items "
                             f"exceeds {MAX_REPEAT}")


def decode(node: dict[str, Any], decode_operand: Callable[[Any], Any]) -> Expr:
    """An `Expr` from its JSON form; anything but {"$op": <name in OPS>, "args": [...]} is refused."""
    op, args = node.get("$op"), node.get("args")
    if set(node) != {"$op", "args"} or not isinstance(op, str) or op not in OPS or not isinstance(args, list):
        raise SpaceError(f"malformed expression in space document (expected $op one of {sorted(OPS)} "
                         f"and a list of args): {json.dumps(node, default=str)[:200]}")
    return Expr(op, tuple(decode_operand(a) for a in args))


class Scope:
    """`scope.int(...)`, `scope.exp(...)`...: Hyperopt's pyll helpers that a space may hold (see `OPS`).

    `scope.define` is refused: a space travels to workers as data, so it cannot carry a function;
    apply such a function to the configuration inside the objective instead.
    """

    def __getattr__(self, name: str) -> Callable[..., Expr]:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in ("define", "define_pure", "define_if_new", "define_info"):
            raise SpaceError(
                f"scope.{name}: hyperdist spaces are data (they travel to workers as JSON), so they cannot "
                f"hold your own functions; call the function on the configuration inside the objective")
        if name not in OPS:
            raise AttributeError(f"scope.{name} is not a hyperdist space function; available: {sorted(OPS)}")

        def build(*args: Any, **kwargs: Any) -> Expr:
            if kwargs:
                raise SpaceError(f"scope.{name}: keyword arguments {sorted(kwargs)} are not supported; "
                                 "pass the arguments by position")
            return Expr(name, args)
        build.__name__ = name
        return build


scope = Scope()
