"""Spaces: sampling support (property tests), validation errors, conditions, JSON form and hash."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperdist import hp, space_eval
from hyperdist.errors import SpaceError
from hyperdist.space.compiled import compile_space, space_from_json

finite = st.floats(-1e3, 1e3, allow_nan=False)
positive = st.floats(1e-3, 1e2, allow_nan=False)


@st.composite
def bounded(draw):
    low = draw(finite)
    return low, low + draw(positive)


@settings(max_examples=60, deadline=None)
@given(bounds=bounded(), q=positive, seed=st.integers(0, 2**32 - 1))
def test_uniform_families_stay_in_support(bounds, q, seed):
    low, high = bounds
    rng = np.random.default_rng(seed)
    for node in (hp.uniform("a", low, high), hp.quniform("a", low, high, q)):
        dist = compile_space(node).params[0].dist
        x = dist.sample(rng, 200)
        lo, hi = dist.value_bounds()
        assert np.all((x >= lo - 1e-9) & (x <= hi + 1e-9))
        if dist.q:
            np.testing.assert_allclose(x, np.round(x / q) * q)


@settings(max_examples=60, deadline=None)
@given(low=st.integers(-50, 50), width=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_integer_families(low, width, seed):
    rng = np.random.default_rng(seed)
    x = compile_space(hp.randint("r", low, low + width)).params[0].dist.sample(rng, 300)
    assert set(x.tolist()) <= set(range(low, low + width)) and np.all(x == np.round(x))
    y = compile_space(hp.uniformint("u", low, low + width)).params[0].dist.sample(rng, 300)
    assert np.all((y >= low) & (y <= low + width)) and np.all(y == np.round(y))
    z = compile_space(hp.randint("r1", width)).params[0].dist.sample(rng, 100)
    assert np.all((z >= 0) & (z < width))


@settings(max_examples=60, deadline=None)
@given(mu=st.floats(-5, 5), sigma=st.floats(0.01, 3), q=st.floats(0.01, 5), seed=st.integers(0, 2**32 - 1))
def test_normal_and_log_families(mu, sigma, q, seed):
    rng = np.random.default_rng(seed)
    def draw(node):
        return compile_space(node).params[0].dist.sample(rng, 200)
    assert np.all(np.isfinite(draw(hp.normal("n", mu, sigma))))
    qn = draw(hp.qnormal("n", mu, sigma, q))
    np.testing.assert_allclose(qn, np.round(qn / q) * q)
    assert np.all(draw(hp.lognormal("n", mu, sigma)) > 0)
    qln = draw(hp.qlognormal("n", mu, sigma, q))
    assert np.all(qln >= 0)
    np.testing.assert_allclose(qln, np.round(qln / q) * q)
    lu = draw(hp.loguniform("l", mu - 1, mu + 1))
    assert np.all((lu >= math.exp(mu - 1) - 1e-9) & (lu <= math.exp(mu + 1) + 1e-9))


@settings(max_examples=60, deadline=None)
@given(low=st.floats(-5, 3), width=st.floats(0.1, 4), q=st.floats(0.05, 5), seed=st.integers(0, 2**32 - 1))
def test_log_uniform_families_stay_in_support(low, width, q, seed):
    rng = np.random.default_rng(seed)
    for node in (hp.loguniform("l", low, low + width), hp.qloguniform("l", low, low + width, q)):
        dist = compile_space(node).params[0].dist
        x = dist.sample(rng, 200)
        lo, hi = dist.value_bounds()
        assert np.all((x >= lo - 1e-9 * hi) & (x <= hi + 1e-9 * hi))
        if dist.q:
            np.testing.assert_allclose(x, np.round(x / q) * q)
        for v in x[:20]:
            dist.check_value("l", float(v))


@settings(max_examples=40, deadline=None)
@given(probs=st.lists(st.floats(0.01, 1), min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_choice_draws_are_option_indices(probs, seed):
    p = [x / sum(probs) for x in probs]
    p[-1] = 1 - sum(p[:-1])
    space = compile_space(hp.pchoice("c", [(pi, f"option{i}") for i, pi in enumerate(p)]))
    x = space.sample(np.random.default_rng(seed), 300)[:, 0]
    assert np.all(x == np.round(x)) and np.all((x >= 0) & (x < len(p)))
    assert space_eval(space, {"c": int(x[0])}) == f"option{int(x[0])}"


def test_choice_stores_index_and_pchoice_follows_probabilities():
    rng = np.random.default_rng(0)
    s = compile_space(hp.pchoice("p", [(0.1, "a"), (0.9, "b")]))
    x = s.params[0].dist.sample(rng, 5000)
    assert set(x.tolist()) == {0, 1} and 0.85 < x.mean() < 0.95


@pytest.mark.parametrize("build, fragments", [
    (lambda: hp.uniform("lr", 1.0, 0.5), ["'lr'", "low=1.0", "high=0.5"]),
    (lambda: hp.randint("r", 5, 2), ["'r'", "low=5", "high=2"]),
    (lambda: hp.uniform(3, 0, 1), ["label 3", "string"]),
    (lambda: hp.choice("", [1]), ["label ''"]),
    (lambda: hp.quniform("qq", 0, 10, 0), ["'qq'", "q=0.0"]),
    (lambda: hp.qloguniform("ql", 0, 1, -2), ["'ql'", "q=-2.0"]),
    (lambda: hp.normal("n", 0, -1), ["'n'", "sigma=-1.0"]),
    (lambda: hp.lognormal("ln", 0, 0), ["'ln'", "sigma=0.0"]),
    (lambda: hp.choice("c", []), ["'c'", "empty"]),
    (lambda: hp.pchoice("p", [(0.5, 1), (0.4, 2)]), ["'p'", "[0.5, 0.4]", "sum to 0.9"]),
    (lambda: hp.pchoice("p", [(1.5, 1), (-0.5, 2)]), ["'p'", "[1.5, -0.5]"]),
    (lambda: hp.uniformint("ui", 0.5, 3), ["'ui'", "low=0.5"]),
    (lambda: hp.uniform("u", 0, float("nan")), ["'u'", "high=nan"]),
    (lambda: hp.uniform("u", "a", 1), ["'u'", "low='a'"]),
    (lambda: compile_space({"a": hp.uniform("x", 0, 1), "b": hp.uniform("x", 0, 2)}), ["'x'", "high=1.0", "high=2.0"]),
    (lambda: compile_space({"a": hp.uniform("x", 0, 1), "b": hp.choice("x", [1, 2])}), ["duplicate label 'x'"]),
])
def test_bad_input_names_label_and_value(build, fragments):
    with pytest.raises(ValueError) as info:
        build()
    assert isinstance(info.value, SpaceError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_conditions_and_space_eval():
    space = {
        "lr": hp.loguniform("lr", -10, 0),
        "layers": hp.choice("layers", [{"n": 1}, {"n": 2, "units2": hp.quniform("units2", 16, 512, 16)}]),
        "t": (hp.uniform("x", 0, 1), hp.choice("z", ["tanh", "relu"])),
    }
    s = compile_space(space)
    assert s.labels == ("lr", "layers", "units2", "x", "z")
    assert s.params[s.index["units2"]].conditions == ((("layers", 1),),)
    X = s.sample(np.random.default_rng(1), 500)
    units = X[:, s.index["units2"]]
    assert np.all(np.isnan(units) == (X[:, s.index["layers"]] == 0))
    cfg = space_eval(space, {"lr": 0.1, "layers": 1, "units2": 64.0, "x": 0.5, "z": 1})
    assert cfg == {"lr": 0.1, "layers": {"n": 2, "units2": 64.0}, "t": (0.5, "relu")}
    assert space_eval(space, {"lr": 0.1, "layers": 0, "x": 0.5, "z": 0})["layers"] == {"n": 1}


def test_nested_choices_compile_with_their_paths():
    inner = hp.choice("inner", [{"u": hp.uniform("u", 0, 1)}, {"v": hp.randint("v", 3)}])
    s = compile_space({"outer": hp.choice("outer", [{"a": hp.normal("a", 0, 1)}, {"deep": inner}, {"again": inner}])})
    cond = {spec.label: spec.conditions for spec in s.params}
    assert cond["outer"] == ((),)
    assert cond["a"] == ((("outer", 0),),)
    assert cond["inner"] == ((("outer", 1),), (("outer", 2),))  # reachable from two branches
    assert cond["u"] == ((("outer", 1), ("inner", 0)), (("outer", 2), ("inner", 0)))
    X = s.sample(np.random.default_rng(0), 400)
    o, i = X[:, s.index["outer"]], X[:, s.index["inner"]]
    assert np.array_equal(np.isnan(X[:, s.index["a"]]), o != 0)
    assert np.array_equal(np.isnan(i), o == 0)
    assert np.array_equal(~np.isnan(X[:, s.index["v"]]), (o != 0) & (i == 1))
    assert space_eval(s, {"outer": 2, "inner": 1, "v": 2}) == {"outer": {"again": {"v": 2}}}


def test_validate_rejects_bad_assignments():
    s = compile_space({"a": hp.uniform("a", 0, 1), "c": hp.choice("c", [0, {"b": hp.randint("b", 5)}])})
    s.validate({"a": 0.5, "c": 0})
    s.validate({"a": 0.5, "c": 1, "b": 4, "unknown": "ignored"})
    for bad, fragment in [({"a": 2.0, "c": 0}, "outside"), ({"a": "x", "c": 0}, "not a finite number"),
                          ({"a": 0.5, "c": 1}, "missing"), ({"a": 0.5, "c": 1, "b": 2.5}, "not an integer"),
                          ({"a": 0.5, "c": 7}, "option index"), ({"a": True, "c": 0}, "not a finite number"),
                          ({"a": None, "c": 0}, "not a finite number"), ({"c": 0}, "'a' is active but missing"),
                          ({"a": 0.5, "c": 1, "b": 5}, "outside")]:
        with pytest.raises(SpaceError, match=fragment):
            s.validate(bad)


SPACE_SRC = """
from hyperdist import hp
space = {"lr": hp.loguniform("lr", -10, 0), "opt": hp.choice("opt", [
    {"name": "sgd", "m": hp.uniform("m", 0, 1)}, {"name": "adam", "b": (hp.normal("b", 0, 1), 3, None)}]),
    "k": hp.pchoice("k", [(0.25, 1), (0.75, 2)]), "r": hp.randint("r", 2, 9), 4: [hp.qlognormal("ql", 0, 1, 2)]}
"""


def test_json_round_trip_and_stable_hash():
    ns: dict = {}
    exec(SPACE_SRC, ns)  # the same source the subprocess below runs
    s = compile_space(ns["space"])
    again = space_from_json(s.to_json())
    assert again.to_json() == s.to_json() and again.hash == s.hash
    assert again.labels == s.labels
    assert space_eval(again, {"lr": 0.1, "opt": 1, "b": 0.5, "k": 0, "r": 3, "ql": 2.0}) == \
        space_eval(s, {"lr": 0.1, "opt": 1, "b": 0.5, "k": 0, "r": 3, "ql": 2.0})
    code = SPACE_SRC + "\nfrom hyperdist.space.compiled import compile_space\nprint(compile_space(space).hash)\n"
    for hash_seed in ("0", "12345"):  # str hashing is salted per process; the space hash must not be
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.strip() == s.hash


def test_reused_node_stays_one_parameter_and_non_json_literal_is_refused():
    shared = hp.uniform("shared", 0, 1)
    s = compile_space([shared, {"again": shared}])
    assert s.labels == ("shared",)
    assert space_from_json(s.to_json()).labels == ("shared",)
    with pytest.raises(SpaceError, match="cannot be stored as JSON"):
        compile_space({"f": hp.choice("f", [object()])}).to_json()


def test_choices_read_as_their_options_not_their_indices():
    space = compile_space({
        "model": hp.choice("model", [{"type": "svm", "C": hp.loguniform("C", -3, 3)}, {"kind": "rf"}, {"n": 1}]),
        "act": hp.choice("act", ["relu", "tanh"]),
        "case": hp.choice("case", [("case 1", 1), [1, 2]]),
        "x": hp.uniform("x", 0, 1),
    })
    assert space.readable({"model": 0, "C": 0.5, "act": 1, "x": 0.25}) == {
        "model": "svm", "C": 0.5, "act": "tanh", "x": 0.25}
    assert [space.display("model", i) for i in range(3)] == ["svm", "rf", "option 2"]
    assert [space.display("case", i) for i in range(2)] == ["case 1", "option 1"]
    assert space.display("act", 7) == 7 and space.display("act", "x") == "x"  # not an index: as stored


def test_drop_invalid_treats_one_row_as_it_treats_many():
    space = compile_space({"c": hp.choice("c", [0, 1, 2]), "u": hp.uniform("u", -1, 1), "n": hp.normal("n", 0, 1),
                           "r": hp.randint("r", 3, 7), "q": hp.qloguniform("q", 0, 3, 2)})
    values = [np.nan, np.inf, -np.inf, -1, 0, 0.5, 1, 2, 2.5, 3, 6, 7, -1.0000001, 1.0000001, 20, 21, 1e300]
    rows = np.random.default_rng(0).choice(values, size=(3000, 5))
    one_by_one = np.vstack([space.drop_invalid(row[None, :].copy()) for row in rows])
    assert np.array_equal(one_by_one, space.drop_invalid(rows.copy()), equal_nan=True)
    assert np.isnan(one_by_one).sum() > np.isnan(rows).sum()  # some values were dropped
