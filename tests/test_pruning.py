"""Early stopping: the pruners' rules, one-process fmin, and workers (in-process and subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hyperdist import Trials, fmin, hp, tpe
from hyperdist.objective.pruning import ASHAPruner, MedianPruner, make_pruner, takes_context
from hyperdist.store import Store
from harness import TESTS, worker_env


class FakePeers:
    def __init__(self, at: dict[int, list[float]], finished: int, done_at: dict[int, list[float]] | None = None):
        self.at, self.finished, self.done_at = at, finished, done_at or at

    def values_at(self, step, finished_only):
        return list((self.done_at if finished_only else self.at).get(step, []))

    def finished_count(self):
        return self.finished


def test_median_rule():
    peers = FakePeers({3: [1.0, 2.0, 3.0, 4.0]}, finished=4)
    rule = MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    assert rule.should_stop(3, 2.6, peers) and not rule.should_stop(3, 2.4, peers)
    assert not rule.should_stop(1, 9.0, peers)                      # warm-up
    assert not MedianPruner(n_startup_trials=5).should_stop(3, 9.0, peers)  # too few finished trials
    assert not rule.should_stop(7, 9.0, peers)                      # nobody reported step 7


def test_asha_rungs_keep_the_best_third():
    rule = ASHAPruner(min_resource=1, reduction_factor=3)
    assert [s for s in range(1, 30) if rule.is_rung(s)] == [1, 3, 9, 27]
    peers = FakePeers({3: [0.1, 0.2, 0.3, 0.4, 0.5]}, finished=0)
    assert not rule.should_stop(3, 0.15, peers)   # 2nd of 6: within the best 6 // 3 = 2
    assert rule.should_stop(3, 0.25, peers)       # 3rd of 6
    assert not rule.should_stop(4, 9.0, peers)    # not a rung
    assert not rule.should_stop(9, 9.0, FakePeers({}, 0))  # the first to reach a rung continues


def test_bad_pruner_config_is_refused():
    from hyperdist.errors import HyperdistError

    with pytest.raises(HyperdistError, match="unknown pruner"):
        make_pruner("hyperband")
    with pytest.raises(HyperdistError, match="reduction_factor"):
        make_pruner({"name": "asha", "reduction_factor": 1})


def _curve(cfg, ctx):
    final = (cfg["x"] - 1.0) ** 2
    steps.append(cfg["x"])
    for step in range(1, 10):
        ctx.report(step, final + 3.0 / step)
        if ctx.should_stop():
            return final  # returning after being told to stop also ends the trial as pruned
    return final


steps: list = []


@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_local_fmin_prunes_and_counts_pruned_trials(pruner):
    assert takes_context(_curve) and not takes_context(lambda c: c)
    steps.clear()
    trials = Trials()
    fmin(_curve, {"x": hp.uniform("x", -5, 5)}, algo=tpe.suggest, max_evals=40, trials=trials, rstate=1,
         show_progressbar=False, pruner=pruner)
    pruned = [t for t in trials.trials if t["result"]["status"] == "pruned"]
    assert len(trials) == 40 and 5 <= len(pruned) < 40
    for t in pruned:
        step = t["result"]["pruned_at"]
        assert t["result"]["loss"] == t["intermediate"][str(step)] and len(t["intermediate"]) == step
    assert trials.best_trial["result"]["status"] == "ok"
    assert None in trials.losses()  # pruned trials have no final loss


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--subprocess"]], ids=["in-process", "subprocess"])
def test_workers_prune_from_the_shared_history(mongo_url, db_name, tmp_path, mode):
    run = subprocess.run(
        [sys.executable, "-m", "hyperdist", "search", f"{TESTS / 'objectives.py'}:curve", "--space",
         f"{TESTS / 'objectives.py'}:space", "--max-evals", "30", "--workers", "2", "--mongo", mongo_url,
         "--db", db_name, "--exp", "pruned", "--pruner", "asha", "--no-progress", "--data-dir", str(tmp_path),
         *(["--subprocess"] if mode else [])],
        env=worker_env(), capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    store = Store(mongo_url, db=db_name)
    history = store.history("pruned")
    assert len(history) == 30 and all(d["state"] == "DONE" for d in history)
    pruned = [d for d in history if d["result"]["status"] == "pruned"]
    assert pruned, "ASHA pruned nothing"
    for d in pruned:
        assert d["result"]["loss"] == d["intermediate"][str(d["result"]["pruned_at"])]
    assert json.loads(run.stdout)["tid"] in {d["tid"] for d in history if d["result"]["status"] == "ok"}
    assert store.get_experiment("pruned")["options"]["pruner"]["name"] == "asha"
    store.close()


@pytest.mark.slow
def test_status_and_plots_show_intermediate_curves(store, tmp_path):
    from click.testing import CliRunner

    from hyperdist.cli import main
    from hyperdist.space.compiled import compile_space

    space = compile_space({"x": hp.uniform("x", 0, 1)})
    store.create_experiment("curves", space=space.to_json(), space_hash=space.hash, objective="m:f", algo={},
                            max_evals=3, seed=0, options={"pruner": {"name": "median"}})
    store.insert_trials("curves", [(i, {"x": i / 3}) for i in range(3)])
    for i in range(3):
        doc = store.claim("w", 30, "curves")
        for step in range(1, 4 if i else 2):
            assert store.report_intermediate(str(doc["_id"]), doc["lease_token"], step, 1.0 / step + i)
        result = {"status": "pruned", "loss": 1.0, "pruned_at": 1} if i == 0 else {"status": "ok", "loss": 0.3 + i}
        store.report(doc["_id"], doc["lease_token"], "DONE", result)
    args = ["--mongo", store.url, "--db", store.db_name]
    status = CliRunner().invoke(main, ["status", "curves", *args])
    assert "(pruned=1)" in status.output
    out = CliRunner().invoke(main, ["plot", "curves", "--out", str(tmp_path), *args])
    assert out.exit_code == 0 and (tmp_path / "curves.png").stat().st_size > 5000
    csv_text = CliRunner().invoke(main, ["export", "curves", *args]).output
    assert "step.1" in csv_text.splitlines()[0]
