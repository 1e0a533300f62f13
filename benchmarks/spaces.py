"""The search spaces of the distributed benchmark, written once for every library with Hyperopt's API.

`build(hp, name)` takes the `hp` module of hyperdist or of Hyperopt (the same calls), so both search
the same space; Optuna's define-by-run version is `peer_objectives.optuna_config`. For the CLI,
`hyperdist search ... --space benchmarks/spaces.py:uniform10` reads the attributes at the end (made
only where hyperdist is installed: the peers' virtualenvs import this file too).

- `mixed6`: uniform, loguniform, quniform, normal, randint and a choice with a nested lognormal;
- `uniform10`: ten uniform(-5, 5) parameters `a` .. `j` (the targets of issue 21);
- `uniform1`: one uniform(-5, 5) parameter `a` (the cheapest space: the machinery alone).
Every space has a parameter `a`, which the objectives score.
"""
from __future__ import annotations

from typing import Any

SPACES = ("mixed6", "uniform10", "uniform1")
TEN = "abcdefghij"


def build(hp: Any, name: str) -> dict:
    if name == "mixed6":
        return {
            "a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
            "d": hp.normal("d", 0, 2), "e": hp.randint("e", 10),
            "m": hp.choice("m", [{"k": "lin"}, {"k": "rbf", "g": hp.lognormal("g", 0, 1)}]),
        }
    if name == "uniform10":
        return {p: hp.uniform(p, -5, 5) for p in TEN}
    if name == "uniform1":
        return {"a": hp.uniform("a", -5, 5)}
    raise ValueError(f"space must be one of {SPACES}, not {name!r}")


try:  # in hyperdist's environment the spaces are attributes too, for `--space spaces.py:NAME`
    from hyperdist import hp as _hp
except ImportError:  # the peers' virtualenvs only call build() with their own hp
    _hp = None
if _hp is not None:
    mixed6, uniform10, uniform1 = (build(_hp, name) for name in SPACES)
