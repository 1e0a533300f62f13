"""Expressions over hp nodes beyond what Hyperopt offers, their JSON form (data only, refused when
malformed), and their evaluation by real worker processes."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import objectives
from hyperdist import MongoTrials, SpaceError, Trials, compile_space, fmin, hp, space_eval, space_from_json, tpe
from hyperdist.pyll import scope
from harness import start_worker, url_with_db, worker_env


def test_mod_abs_and_unary_plus_compute_as_python():
    x, y = hp.uniform("x", -5, 5), hp.randint("y", 1, 9)
    space = {"mod": x % 3, "rmod": 17 % y, "abs": abs(x), "pos": +x, "round": scope.round(x, 1)}
    for point in ({"x": -4.25, "y": 5}, {"x": 2.5, "y": 3}):
        a, b = point["x"], point["y"]
        assert space_eval(space, point) == {"mod": a % 3, "rmod": 17 % b, "abs": abs(a), "pos": a, "round": round(a, 1)}


def test_expressions_keep_the_table_flat_and_tpe_searches_the_labels():
    space = {"lr": 10 ** hp.uniform("log10_lr", -4, -1), "n": scope.int(hp.quniform("n", 1, 9, 1)) + 1}
    compiled = compile_space(space)
    assert compiled.labels == ("log10_lr", "n") and [p.dist.family for p in compiled.params] == ["uniform", "quniform"]
    seen = []
    trials = Trials()
    fmin(lambda c: seen.append(c) or abs(math.log10(c["lr"]) + 2.5) + c["n"], space, tpe.suggest, 40, trials=trials,
         rstate=0, show_progressbar=False)
    assert all(isinstance(c["n"], int) and 2 <= c["n"] <= 10 and 1e-4 <= c["lr"] <= 0.1 for c in seen)
    assert set(trials.argmin) == {"log10_lr", "n"} and trials.best_trial["result"]["loss"] < 2.5


@pytest.mark.parametrize("node, fragment", [
    ({"$op": "system", "args": ["ls"]}, r"expected \$op one of"),
    ({"$op": "__class__", "args": []}, r"expected \$op one of"),
    ({"$op": "add", "args": [1]}, "takes 2 argument"),
    ({"$op": "add", "args": "12"}, "a list of args"),
    ({"$op": "add", "args": [1, 2], "fn": "eval"}, "malformed expression"),
    ({"$op": 5, "args": []}, "malformed expression"),
    ({"$op": "switch", "args": [0]}, "at least one option"),
])
def test_malformed_expression_documents_are_refused(node, fragment):
    with pytest.raises(SpaceError, match=fragment):
        space_from_json({"format": "hyperdist.space/1", "root": {"x": node}})


@pytest.mark.parametrize("root, fragment", [
    ({"$op": "pow", "args": [10, {"$op": "pow", "args": [10, 10]}]}, "an integer power of about 40000000000 bits"),
    ({"$op": "pow", "args": [{"$op": "pow", "args": [10, 10000]}, 10000]}, "exceeds 100000"),
    ({"$op": "mul", "args": [["x"], 10**9]}, "repeated to 1000000000 items"),
])
def test_documents_that_would_stall_a_worker_are_refused_when_evaluated(root, fragment):
    space = space_from_json({"format": "hyperdist.space/1", "root": root})
    with pytest.raises(SpaceError, match=fragment):
        space.eval({})


def test_scope_offers_only_data_functions():
    with pytest.raises(SpaceError, match="cannot hold your own functions"):
        scope.define(lambda a: a)
    with pytest.raises(AttributeError, match="scope.call_method is not a hyperdist space function"):
        scope.call_method
    with pytest.raises(SpaceError, match="keyword arguments"):
        scope.sum([1, 2], axis=0)
    with pytest.raises(SpaceError, match="scope.switch: index 3"):
        space_eval(scope.switch(hp.randint("i", 4), "a", "b"), {"i": 3})
    with pytest.raises(SpaceError, match="failed: float division by zero"):
        space_eval(1 / hp.uniform("u", -1, 1), {"u": 0.0})


def test_numpy_scalars_on_the_left_build_expressions():
    node = np.float64(2.0) * hp.uniform("u", 0, 1) + np.int64(1)
    assert space_eval(node, {"u": 0.25}) == 1.5
    assert json.loads(json.dumps(compile_space(node).to_json()))["root"]["$op"] == "add"


@pytest.mark.slow
def test_workers_evaluate_expressions_sent_as_json(mongo_url, db_name, tmp_path):
    log = tmp_path / "cfgs.jsonl"
    worker = start_worker(mongo_url, db_name, "expr", worker_env(HYPERDIST_TEST_LOG=str(log)))
    try:
        trials = MongoTrials(url_with_db(mongo_url, db_name),
                             exp_key="expr", db=db_name, workers=1)
        fmin(objectives.expression_loss, objectives.expression_space, algo=tpe.suggest, max_evals=12,
             trials=trials, rstate=1, show_progressbar=False)
        assert worker.wait(60) == 0
    finally:
        worker.kill()
        worker.wait(30)
    assert len(trials) == 12
    received = [json.loads(line) for line in log.read_text().splitlines()]
    expected = [space_eval(objectives.expression_space, t["params"]) for t in trials.trials]
    assert sorted(json.dumps(c, sort_keys=True) for c in received) == \
        sorted(json.dumps(e, sort_keys=True, default=float) for e in expected)
    assert all(isinstance(c["units"], int) and c["units"] % 16 == 0 and c["shifted"] >= 1 for c in received)


@pytest.mark.parametrize("root", [
    {"$op": "round", "args": [5, -100_000_000]},                       # 10 ** (10 ** 8) inside round
    {"$op": "mul", "args": [{"$op": "pow", "args": [7, 30_000]},        # every step bounded: no nested growth
                            {"$op": "mul", "args": [{"$op": "pow", "args": [7, 30_000]},
                                                    {"$op": "pow", "args": [7, 30_000]}]}]},
])
def test_a_planted_expression_cannot_stall_a_worker(root):
    """Refused before the work (without the bounds this test would run for hours)."""
    with pytest.raises(SpaceError, match="exceeds"):
        space_from_json({"format": "hyperdist.space/1", "root": root}).eval({})


def test_an_expression_that_fails_on_valid_params_fails_its_trial_as_fmin_records_it(tmp_path, local_servers):
    """1 / q at q = 0: the worker records the space's own error (type and message), the same record
    fmin keeps, and goes on; it is not an 'invalid trial document'."""
    import subprocess
    import sys

    (tmp_path / "inv.py").write_text("from hyperdist import hp\nspace = {'inv': 1 / hp.quniform('q', 0, 2, 1)}\n"
                                     "def f(c):\n    return c['inv']\n")
    run = subprocess.run([sys.executable, "-m", "hyperdist", "search", "inv.py:f", "--space", "inv.py:space",
                          "--max-evals", "12", "--workers", "1", "--data-dir", str(tmp_path / "hd"), "--exp", "inv",
                          "--seed", "3"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert "SpaceError: space expression (1 / hp.quniform('q'" in run.stderr and "float division by zero" in run.stderr
    assert "invalid trial document" not in run.stderr
