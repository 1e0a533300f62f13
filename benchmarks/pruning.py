"""Pruning benchmark: hyperdist without pruning, with the median rule and with ASHA, against Optuna's
TPE with successive halving, in one run.

    python benchmarks/pruning.py --seeds 5 --trials 60 --out benchmarks/results/pruning.md

Two tasks, each a learning curve reported one step (epoch) at a time:
- synthetic: a 3-parameter family of curves value(step) = final(x) + a(x) / step, 27 steps;
- digits: scikit-learn's SGDClassifier trained with partial_fit on the digits data set that ships
  with scikit-learn, one epoch per step (20 epochs); the value is the validation error.
Cost is counted in steps (epochs) run, which does not depend on how busy the machine is; the
digits task also reports wall-clock seconds. For each method: the steps needed until a trial
reached the target (median over seeds), and the best final loss after all trials.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np


class Budget:
    """Counts steps and remembers when the target was first reached."""

    def __init__(self, target: float) -> None:
        self.steps, self.target, self.steps_to_target = 0, target, None
        self.t0, self.seconds_to_target = time.perf_counter(), None

    def step(self, value: float) -> None:
        self.steps += 1
        if value <= self.target and self.steps_to_target is None:
            self.steps_to_target = self.steps
            self.seconds_to_target = time.perf_counter() - self.t0


def synthetic_task():
    def curve(p: dict, step: int) -> float:
        final = (p["x"] - 0.3) ** 2 + (math.log10(p["lr"]) + 2.5) ** 2 / 10 + (0.0 if p["arch"] == 1 else 0.2)
        return final + (0.5 + p["x"]) / step
    steps = 27

    def space(hp):
        return {"x": hp.uniform("x", 0, 1), "lr": hp.loguniform("lr", math.log(1e-5), 0),
                "arch": hp.choice("arch", [0, 1])}

    def optuna_params(t):
        return {"x": t.suggest_float("x", 0, 1), "lr": t.suggest_float("lr", 1e-5, 1, log=True),
                "arch": t.suggest_categorical("arch", [0, 1])}
    return "synthetic", space, optuna_params, lambda p: (lambda step: curve(p, step)), steps, 0.06


def digits_task(target: float = 0.03):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    X_val, _X_test, y_val, _y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    classes = np.unique(y)

    def trainer(p: dict) -> Callable[[int], float]:
        model = SGDClassifier(alpha=p["alpha"], eta0=p["eta0"], learning_rate=p["schedule"], loss=p["loss"],
                              random_state=0)

        def epoch(step: int) -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.partial_fit(X_train, y_train, classes=classes)
            return 1.0 - model.score(X_val, y_val)
        return epoch

    def space(hp):
        return {"alpha": hp.loguniform("alpha", math.log(1e-7), math.log(1e-1)),
                "eta0": hp.loguniform("eta0", math.log(1e-5), math.log(1.0)),
                "schedule": hp.choice("schedule", ["constant", "invscaling", "adaptive"]),
                "loss": hp.choice("loss", ["hinge", "log_loss", "modified_huber"])}

    def optuna_params(t):
        return {"alpha": t.suggest_float("alpha", 1e-7, 1e-1, log=True),
                "eta0": t.suggest_float("eta0", 1e-5, 1.0, log=True),
                "schedule": t.suggest_categorical("schedule", ["constant", "invscaling", "adaptive"]),
                "loss": t.suggest_categorical("loss", ["hinge", "log_loss", "modified_huber"])}
    return "digits", space, optuna_params, trainer, 20, target


def run_hyperdist(task, pruner: str | None, seed: int, trials: int):
    import hyperdist

    _, space, _, make, steps, target = task
    budget = Budget(target)

    def objective(p, ctx):
        run = make(p)
        value = float("inf")
        for step in range(1, steps + 1):
            value = run(step)
            budget.step(value)
            ctx.report(step, value)
            if ctx.should_stop():
                ctx.prune()
        return value

    history = hyperdist.Trials()
    hyperdist.fmin(objective, space(hyperdist.hp), algo=hyperdist.tpe.suggest, max_evals=trials, trials=history,
                   rstate=seed, show_progressbar=False, pruner=pruner)
    return budget, history.best_trial["result"]["loss"]


def run_optuna(task, pruner_name: str, seed: int, trials: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _, _, optuna_params, make, steps, target = task
    budget = Budget(target)
    pruner = {"sha": optuna.pruners.SuccessiveHalvingPruner(), "median": optuna.pruners.MedianPruner(),
              "none": optuna.pruners.NopPruner()}[pruner_name]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)

    def objective(t):
        run = make(optuna_params(t))
        value = float("inf")
        for step in range(1, steps + 1):
            value = run(step)
            budget.step(value)
            t.report(value, step)
            if t.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=trials)
    return budget, study.best_value


METHODS = {
    "hyperdist, no pruning": lambda task, s, n: run_hyperdist(task, None, s, n),
    "hyperdist, median": lambda task, s, n: run_hyperdist(task, "median", s, n),
    "hyperdist, ASHA": lambda task, s, n: run_hyperdist(task, "asha", s, n),
    "Optuna TPE, successive halving": lambda task, s, n: run_optuna(task, "sha", s, n),
    "Optuna TPE, median": lambda task, s, n: run_optuna(task, "median", s, n),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--tasks", nargs="+", default=["synthetic", "digits"])
    ap.add_argument("--digits-target", type=float, default=0.03, help="validation error to reach")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = []
    for name in args.tasks:
        task = synthetic_task() if name == "synthetic" else digits_task(args.digits_target)
        lines += [f"### {name}: {args.trials} trials x {task[4]} steps max, target {task[5]}, {args.seeds} seeds", "",
                  "| method | steps run (median) | steps to target (median, reached/seeds) | seconds to target "
                  "(median) | best final loss (median) |", "|---|---|---|---|---|"]
        for method, fn in METHODS.items():
            runs = [fn(task, seed, args.trials) for seed in range(args.seeds)]
            reached = [b.steps_to_target for b, _ in runs if b.steps_to_target is not None]
            secs = [b.seconds_to_target for b, _ in runs if b.seconds_to_target is not None]
            to_target = f"{statistics.median(reached):.0f}" if reached else "-"
            seconds = f"{statistics.median(secs):.2f}" if secs else "-"
            lines.append(f"| {method} | {statistics.median(b.steps for b, _ in runs):.0f} | "
                         f"{to_target} ({len(reached)}/{args.seeds}) | {seconds} | "
                         f"{statistics.median(best for _, best in runs):.4g} |")
            print(lines[-1], flush=True)
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
