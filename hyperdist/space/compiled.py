"""A compiled search space: the flat parameter table the algorithms work on, plus the tree it came from.

Compiling walks the user's nested structure once, checks labels, and records for each parameter the
choice branches under which it is active. Trials store plain `{label: value}` assignments (a choice
stores its option index); `space_eval` rebuilds the nested configuration from one. The JSON form is
what the distributed mode stores in MongoDB: data only, never code.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from hyperdist.space.distributions import FAMILIES, Distribution, make
from hyperdist.space import expr
from hyperdist.errors import DuplicateLabel, SpaceError
from hyperdist.space.expr import Expr
from hyperdist.space.hp import Param

Path = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ParamSpec:
    """One row of the flat table: a parameter and the branch paths under which it is active."""

    label: str
    dist: Distribution
    conditions: tuple[Path, ...]  # active if any path holds; () inside means "always"

    @property
    def unconditional(self) -> bool:
        return () in self.conditions


class SearchSpace:
    """The compiled form of a space; build it with `compile_space`."""

    def __init__(self, tree: Any, params: list[ParamSpec]) -> None:
        self.tree = tree
        self.params: tuple[ParamSpec, ...] = tuple(params)
        self.labels: tuple[str, ...] = tuple(p.label for p in params)
        self.index: dict[str, int] = {label: i for i, label in enumerate(self.labels)}
        self._json: dict[str, Any] | None = None
        self._options: dict[str, tuple[Any, ...]] = {
            node.label: node.options for node, _ in _walk(tree, ()) if node.options is not None}

    def __len__(self) -> int:
        return len(self.params)

    # --- activity -------------------------------------------------------------------------------
    @functools.cached_property
    def paths(self) -> dict[int, tuple[tuple[tuple[int, int], ...], ...]]:
        """Column -> branch paths ((parent column, option), ...) of each conditional parameter, in table
        order (parents first); a parameter is active when every pair of one of its paths holds. The one
        statement of activity that every check below (and tpe's) reads."""
        return {j: tuple(tuple((self.index[label], option) for label, option in path) for path in spec.conditions)
                for j, spec in enumerate(self.params) if not spec.unconditional}

    def active_mask(self, X: np.ndarray, j: int) -> np.ndarray:
        """Rows of X (n x d, option indices for choices) where parameter j is active."""
        if j not in self.paths:
            return np.ones(len(X), dtype=bool)
        mask = np.zeros(len(X), dtype=bool)
        for path in self.paths[j]:
            ok = np.ones(len(X), dtype=bool)
            for c, option in path:
                ok &= X[:, c] == option
            mask |= ok
        return mask

    def mask_inactive(self, X: np.ndarray) -> np.ndarray:
        """Set the entries of inactive parameters to NaN, in place, in table order (parents first)."""
        for j in self.paths:
            X[~self.active_mask(X, j), j] = np.nan
        return X

    def mask_inactive_row(self, row: list[float]) -> list[float]:
        """`mask_inactive` of one row as a Python list, in place: a dozen numpy calls cheaper (tpe)."""
        for j, paths in self.paths.items():
            if not any(all(row[c] == option for c, option in path) for path in paths):
                row[j] = math.nan
        return row

    # --- what a person reads -------------------------------------------------------------------
    def display(self, label: str, value: Any) -> Any:
        """The value a person should read for `label`: a choice's option (or a short name for a
        structured option) instead of its stored index; other parameters unchanged."""
        options = self._options.get(label)
        if options is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        i = int(value)
        if i != value or not 0 <= i < len(options):
            return value
        return option_name(options[i], i)

    def is_choice(self, label: str) -> bool:
        """Whether `label` stores an option index (`hp.choice`/`hp.pchoice`), which `display` maps."""
        return label in self._options

    def readable(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """An assignment with every choice shown by its option (see `display`)."""
        return {label: self.display(label, value) for label, value in assignment.items()}

    # --- conversions ----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n prior draws as a table (NaN where a parameter is inactive)."""
        X = np.empty((n, len(self.params)))
        for j, spec in enumerate(self.params):
            X[:, j] = spec.dist.sample(rng, n)
        return self.mask_inactive(X)

    def to_assignment(self, row: np.ndarray) -> dict[str, int | float]:
        """A table row as the plain `{label: value}` stored in a trial (active parameters only)."""
        return {
            spec.label: spec.dist.python_value(x) for spec, x in zip(self.params, row) if not math.isnan(x)
        }

    def to_row(self, assignment: Mapping[str, Any]) -> np.ndarray:
        """The inverse of `to_assignment`; unknown labels are ignored, missing ones become NaN."""
        row = np.full(len(self.params), np.nan)
        for label, value in assignment.items():
            j = self.index.get(label)
            if j is not None and value is not None:
                row[j] = float(value)
        return row

    def drop_invalid(self, X: np.ndarray) -> np.ndarray:
        """Set values outside their parameter's support to NaN, in place: rows read from a database
        (which anyone may have edited) never reach an algorithm as an option index out of range."""
        if len(X) == 1:  # one trial's row, recorded as each result arrives: plain floats, ~20x cheaper
            for j, (categorical, lo, hi) in enumerate(self._support):
                v = float(X[0, j])
                if v == v and (not math.isfinite(v) or v < lo or v > hi or categorical and v != round(v)):
                    X[0, j] = np.nan
            return X
        for j, spec in enumerate(self.params):
            col = X[:, j]
            with np.errstate(invalid="ignore"):
                if spec.dist.categorical:
                    bad = (col != np.round(col)) | (col < 0) | (col >= spec.dist.n_options)
                else:
                    lo, hi = spec.dist.value_bounds()
                    tol = 1e-9 * max(1.0, abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
                    bad = ~np.isfinite(col) | (col < lo - tol) | (col > hi + tol)
            col[bad & ~np.isnan(col)] = np.nan
        return X

    @functools.cached_property
    def _support(self) -> tuple[tuple[bool, float, float], ...]:
        """(categorical, lowest, highest) allowed value of each parameter, as `drop_invalid` checks them."""
        out = []
        for spec in self.params:
            if spec.dist.categorical:
                out.append((True, 0.0, spec.dist.n_options - 1.0))
                continue
            lo, hi = spec.dist.value_bounds()
            tol = 1e-9 * max(1.0, abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
            out.append((False, lo - tol, hi + tol))
        return tuple(out)

    def validate(self, assignment: Mapping[str, Any], support: bool = True) -> None:
        """Check an assignment read from outside (a database) against the space. With
        support=False a number outside a parameter's range passes (Hyperopt evaluates such
        `points_to_evaluate`); a missing value or an option index that does not exist never does."""
        row = np.full(len(self.params), np.nan)
        for j, spec in enumerate(self.params):
            if j in self.paths and not any(all(row[c] == opt for c, opt in path) for path in self.paths[j]):
                continue
            if spec.label not in assignment:
                raise SpaceError(f"parameter {spec.label!r} is active but missing from {dict(assignment)!r}")
            value = assignment[spec.label]
            if support or spec.dist.categorical:
                spec.dist.check_value(spec.label, value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SpaceError(f"parameter {spec.label!r}: value {value!r} is not a finite number")
            row[j] = float(value)

    def eval(self, assignment: Mapping[str, Any]) -> Any:
        """Rebuild the nested configuration the objective receives."""
        return space_eval(self.tree, assignment)

    def to_json(self) -> dict[str, Any]:
        if self._json is None:
            self._json = {"format": "hyperdist.space/1", "root": _encode(self.tree)}
        return self._json

    @property
    def hash(self) -> str:
        """Stable across processes and Python versions: sha256 of the canonical JSON."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> dict[str, str]:
        """label -> short human description, for diffs of changed spaces and for status output."""
        out = {}
        for spec in self.params:
            args = ", ".join(f"{k}={v:g}" for k, v in spec.dist.params.items() if k != "p")
            if spec.dist.categorical:
                args = f"{spec.dist.n_options} options"
            out[spec.label] = f"{spec.dist.family}({args})"
        return out


# --- compile -------------------------------------------------------------------------------------
def compile_space(space: Any) -> SearchSpace:
    """Flatten a space into its parameter table, rejecting duplicate or malformed labels."""
    if isinstance(space, SearchSpace):
        return space
    seen: dict[str, tuple[Param, list[Path]]] = {}
    order: list[str] = []
    for node, path in _walk(space, ()):
        entry = seen.get(node.label)
        if entry is None:
            seen[node.label] = (node, [path])
            order.append(node.label)
        elif entry[0] is not node:
            raise DuplicateLabel(
                f"duplicate label {node.label!r}: {entry[0]!r} and {node!r} are different parameters"
            )
        else:
            entry[1].append(path)
    params = []
    for label in order:
        node, paths = seen[label]
        conditions = ((),) if () in paths else tuple(dict.fromkeys(paths))
        params.append(ParamSpec(label, node.dist, conditions))
    for spec in params:
        for path in spec.conditions:
            for parent, _ in path:
                if parent == spec.label:
                    raise SpaceError(f"label {spec.label!r} appears inside one of its own options")
    return SearchSpace(space, params)


def option_name(option: Any, index: int) -> Any:
    """A short name for a choice option: the option itself when it is a scalar, else the value of a
    naming key (`type`, `kind`, `name`, `model`, ...) or the leading string of a tuple
    (Hyperopt's `("case 1", ...)` idiom), else `option <index>`."""
    if option is None or isinstance(option, (bool, int, float, str)):
        return option
    if isinstance(option, Mapping):
        for key in ("type", "kind", "name", "model", "family", "algo", "algorithm", "method", "id"):
            if isinstance(option.get(key), (str, int, float, bool)):
                return option[key]
    if isinstance(option, (list, tuple)) and option and isinstance(option[0], str):
        return option[0]
    return f"option {index}"


def _walk(node: Any, path: Path) -> Iterator[tuple[Param, Path]]:
    if isinstance(node, Param):
        yield node, path
        if node.options is not None:
            for i, option in enumerate(node.options):
                yield from _walk(option, path + ((node.label, i),))
    elif isinstance(node, Expr):
        for value in node.args:
            yield from _walk(value, path)
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _walk(value, path)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value, path)


def space_eval(space: Any, assignment: Mapping[str, Any]) -> Any:
    """Substitute an assignment (`{label: value}`, choice -> option index) into a space."""
    if isinstance(space, SearchSpace):
        space = space.tree
    return _substitute(space, assignment)


def _substitute(node: Any, assignment: Mapping[str, Any]) -> Any:
    if isinstance(node, Param):
        if node.label not in assignment:
            raise SpaceError(f"space_eval: no value for active parameter {node.label!r}")
        value = assignment[node.label]
        if isinstance(value, (list, tuple)) and len(value) == 1:  # Hyperopt's trial 'vals' form
            value = value[0]
        if node.options is not None:
            index = int(value)
            if not 0 <= index < len(node.options) or index != value:
                raise SpaceError(f"space_eval: {node.label!r}={value!r} is not an option index")
            return _substitute(node.options[index], assignment)
        return int(value) if node.dist.integer else value
    if isinstance(node, Expr):
        return node.evaluate(lambda operand: _substitute(operand, assignment))
    if isinstance(node, Mapping):
        return {k: _substitute(v, assignment) for k, v in node.items()}
    if isinstance(node, tuple):
        return tuple(_substitute(v, assignment) for v in node)
    if isinstance(node, list):
        return [_substitute(v, assignment) for v in node]
    return node


# --- JSON ----------------------------------------------------------------------------------------
def _encode(node: Any) -> Any:
    if isinstance(node, Param):
        out: dict[str, Any] = {"$hp": node.dist.family, "label": node.label, "args": list(node.dist.args)}
        if node.options is not None:
            out["options"] = [_encode(o) for o in node.options]
        return out
    if isinstance(node, Expr):
        return node.to_json(_encode)
    if isinstance(node, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in node):
            return {k: _encode(v) for k, v in node.items()}
        return {"$dict": [[_literal(k), _encode(v)] for k, v in node.items()]}
    if isinstance(node, tuple):
        return {"$tuple": [_encode(v) for v in node]}
    if isinstance(node, list):
        return [_encode(v) for v in node]
    return _literal(node)


def _literal(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpaceError(f"space literal {value!r} cannot be stored as JSON")
        return value
    if isinstance(value, (np.integer, np.floating)):
        return _literal(value.item())
    raise SpaceError(
        f"space literal {value!r} of type {type(value).__name__} cannot be stored as JSON; "
        "use strings, numbers, bools, None, lists, tuples and dicts (map names to objects in the objective)"
    )


def space_from_json(data: Any) -> SearchSpace:
    """Rebuild a compiled space from `SearchSpace.to_json()` output; anything else is a SpaceError."""
    if not isinstance(data, Mapping) or data.get("format") != "hyperdist.space/1" or "root" not in data:
        got = "no space at all" if data is None else f"a {type(data).__name__}"
        raise SpaceError(f"not a hyperdist space document: {got} (expected {{'format': 'hyperdist.space/1', 'root': ...}})")
    memo: dict[str, Param] = {}
    try:
        return compile_space(_decode(data["root"], memo))
    except SpaceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError, OverflowError) as exc:
        # a document read from a database may be anything: it fails as a space, never as a crash
        raise SpaceError(f"malformed space document: {type(exc).__name__}: {str(exc)[:200]}") from None


def _decode(node: Any, memo: dict[str, Param]) -> Any:
    if isinstance(node, list):
        return [_decode(v, memo) for v in node]
    if not isinstance(node, dict):
        return node
    if "$tuple" in node:
        return tuple(_decode(v, memo) for v in node["$tuple"])
    if "$dict" in node:
        return {_hashable(k): _decode(v, memo) for k, v in node["$dict"]}
    if "$op" in node:
        return expr.decode(node, lambda operand: _decode(operand, memo))
    if "$hp" not in node:
        return {k: _decode(v, memo) for k, v in node.items()}
    family, label, args = node["$hp"], node.get("label"), node.get("args")
    if family not in FAMILIES or not isinstance(label, str) or not isinstance(args, list):
        raise SpaceError(f"malformed parameter in space document: {json.dumps(node)[:200]}")
    key = json.dumps(node, sort_keys=True)
    if key in memo:  # the same node used in several places stays one parameter
        return memo[key]
    dist = make(label, family, tuple(args))
    options = tuple(_decode(o, memo) for o in node["options"]) if "options" in node else None
    if family == "choice" and (options is None or len(options) != len(args)):
        raise SpaceError(f"choice {label!r} in space document: options do not match probabilities")
    memo[key] = Param(label, dist, options)
    return memo[key]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
