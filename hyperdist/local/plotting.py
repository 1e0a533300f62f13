"""Hyperopt's `hyperopt.plotting` figures for a `Trials` object, drawn into the current matplotlib figure.

`main_plot_history` (loss per trial, coloured by status, a line at the best loss),
`main_plot_histogram` (histogram of the losses) and `main_plot_vars` (one panel per parameter: its
value per trial, shaded by loss) take the same arguments as Hyperopt's and, like them, call
`plt.show()` unless `do_show=False`; each also returns the figure. hyperdist's own richer plots of a
stored experiment are `hyperdist plot` (hyperdist/plots.py).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hyperdist.errors import AllTrialsFailed, HyperdistError
from hyperdist.objective.result import STATUS_FAIL, STATUS_NEW, STATUS_OK, STATUS_RUNNING

default_status_colors = {STATUS_NEW: "k", STATUS_RUNNING: "g", STATUS_OK: "b", STATUS_FAIL: "r"}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise HyperdistError("hyperdist.local.plotting needs matplotlib: pip install 'hyperdist[plot]'") from None
    return plt


def _with_loss(trials: Any) -> list[tuple[float, str]]:
    """(loss, status) of the trials that have a loss, in trial order."""
    pairs = [(y, s) for y, s in zip(trials.losses(), trials.statuses()) if y is not None]
    if not pairs:
        raise AllTrialsFailed(f"no trial of the {len(trials)} has a loss to plot")
    return pairs


def main_plot_history(trials: Any, do_show: bool = True, status_colors: dict[str, str] | None = None,
                      title: str = "Loss History") -> Any:
    """Each trial's loss against its position in the history, and a horizontal line at the best loss."""
    plt = _pyplot()
    colors = {**default_status_colors, **(status_colors or {})}
    pairs = _with_loss(trials)
    plt.scatter(range(len(pairs)), [y for y, _ in pairs], c=[colors.get(s, "k") for _, s in pairs])
    plt.xlabel("time")
    plt.ylabel("loss")
    try:
        plt.axhline(trials.best_trial["result"]["loss"], c="g")
    except AllTrialsFailed:
        pass  # losses of failed trials only: there is no best to mark
    plt.title(title)
    if do_show:
        plt.show()
    return plt.gcf()


def main_plot_histogram(trials: Any, do_show: bool = True, title: str = "Loss Histogram") -> Any:
    """A histogram of the trials' losses."""
    plt = _pyplot()
    losses = [y for y, _ in _with_loss(trials) if math.isfinite(y)]
    plt.hist(losses)
    plt.xlabel("loss")
    plt.ylabel("frequency")
    plt.title(title)
    if do_show:
        plt.show()
    return plt.gcf()


def main_plot_vars(trials: Any, do_show: bool = True, fontsize: int = 10, colorize_best: int | None = None,
                   columns: int = 5, arrange_by_loss: bool = False) -> Any:
    """One panel per parameter (sorted by label, `columns` per row): the value in each trial where it
    was active against the trial id (or the trial's loss with `arrange_by_loss`), shaded from black
    (best loss) to white (worst); with `colorize_best=k`, the k+1 best trials are drawn in green.
    As in Hyperopt, a parameter whose label contains "log" is drawn on a log axis, and a choice
    shows its option index."""
    plt = _pyplot()
    loss_by_tid = {t["tid"]: t["result"].get("loss") for t in trials.trials}
    finite = sorted(y for y in loss_by_tid.values() if y is not None and math.isfinite(y))
    if not finite:
        raise AllTrialsFailed(f"no trial of the {len(trials)} has a finite loss to plot")
    low, high = finite[0], finite[-1]
    best_below = finite[min(colorize_best + 1, len(finite) - 1)] if colorize_best is not None else low - 1

    def shade(loss: float | None) -> tuple[float, float, float]:
        if loss is None or not math.isfinite(loss):
            return 1.0, 1.0, 1.0
        t = (loss - low) / (high - low + 1e-4)
        return (0.0, 1.0 - t, 0.0) if loss < best_below else (t, t, t)

    vals, idxs = trials.vals, trials.idxs
    labels = sorted(vals)
    n_cols = max(1, min(columns, len(labels)))
    n_rows = max(1, math.ceil(len(labels) / n_cols))
    for panel, label in enumerate(labels, start=1):
        plt.subplot(n_rows, n_cols, panel)
        plt.title(label.replace("$", r"\$"), fontsize=fontsize)  # drawn as written, not as mathtext
        points = [(tid, v) for tid, v in zip(idxs[label], vals[label]) if tid in loss_by_tid]
        if arrange_by_loss:  # a trial without a finite loss has no place on a loss axis
            points = [(tid, v) for tid, v in points if loss_by_tid[tid] is not None and math.isfinite(loss_by_tid[tid])]
        tids = [tid for tid, _ in points]
        x = [loss_by_tid[tid] for tid in tids] if arrange_by_loss else tids
        y = np.asarray([v for _, v in points], dtype=float)
        if len(y):
            plt.scatter(x, y, c=[shade(loss_by_tid.get(tid)) for tid in tids], edgecolors="0.5", linewidths=0.3)
        if "log" in label and len(y) and np.all(y > 0):
            plt.yscale("log")
        plt.xticks([])
    plt.tight_layout()
    if do_show:
        plt.show()
    return plt.gcf()
