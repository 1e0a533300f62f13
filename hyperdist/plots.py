"""Pictures of a search (matplotlib, drawn headless): progress, each parameter's effect, the best
trials in parallel coordinates, and a timeline of trials per worker.

Each function takes the trial documents of one experiment (`Store.history`) and writes PNG and SVG.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HyperdistError
from .space import SearchSpace


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise HyperdistError("plots need matplotlib: pip install 'hyperdist[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _loss(doc: dict) -> float | None:
    result = doc.get("result") or {}
    loss = result.get("loss")
    ok = doc.get("state") == "DONE" and result.get("status") == "ok" and isinstance(loss, (int, float))
    return float(loss) if ok and math.isfinite(loss) else None


def _save(fig: Any, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for p in paths:
        fig.savefig(p, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return paths


def plot_history(docs: list[dict], out: Path) -> list[Path]:
    """Loss of every finished trial by trial id, failures marked, and the best-so-far line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    done = [(d["tid"], _loss(d)) for d in docs if d.get("state") in ("DONE", "ERROR")]
    ok = [(t, v) for t, v in done if v is not None]
    if ok:
        tids, losses = map(np.array, zip(*ok))
        ax.scatter(tids, losses, s=12, alpha=0.6, label="trial loss")
        best = np.minimum.accumulate(losses)
        ax.step(tids, best, where="post", color="C3", label="best so far")
        failed = [t for t, v in done if v is None]
        if failed:
            ax.scatter(failed, np.full(len(failed), losses.max()), marker="x", color="k", label="failed")
    ax.set_xlabel("trial id")
    ax.set_ylabel("loss")
    ax.set_title("loss per trial")
    ax.legend(loc="upper right")
    return _save(fig, out, "history")


def plot_parameters(docs: list[dict], space: SearchSpace, out: Path) -> list[Path]:
    """For each parameter, its value against the loss (log axis for log families, strips for choices)."""
    plt = _pyplot()
    n = len(space.params)
    cols = min(3, n)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, spec in zip(axes.flat, space.params):
        pairs = [(d["params"][spec.label], v) for d in docs
                 if (v := _loss(d)) is not None and spec.label in (d.get("params") or {})]
        ax.set_title(spec.label)
        ax.set_ylabel("loss")
        if not pairs:
            continue
        x, y = map(np.array, zip(*pairs))
        if spec.dist.categorical:
            ax.scatter(x + rng.uniform(-0.15, 0.15, len(x)), y, s=10, alpha=0.6)
            ax.set_xticks(range(spec.dist.n_options))
            ax.set_xlabel("option")
        else:
            ax.scatter(x, y, s=10, alpha=0.6)
            if spec.dist.log and np.all(x > 0):
                ax.set_xscale("log")
            ax.set_xlabel("value")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("effect of each hyperparameter")
    fig.tight_layout()
    return _save(fig, out, "parameters")


def plot_parallel(docs: list[dict], space: SearchSpace, out: Path, top: int = 20) -> list[Path]:
    """Parallel coordinates of the best trials, each axis scaled to its parameter's observed range."""
    plt = _pyplot()
    scored = sorted(((v, d) for d in docs if (v := _loss(d)) is not None), key=lambda p: p[0])[:top]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(space.params)), 4.5))
    labels = list(space.labels)
    if scored:
        X = np.array([space.to_row(d["params"]) for _, d in scored])
        for j, spec in enumerate(space.params):
            col = X[:, j]
            if spec.dist.log:
                col = np.log(np.where(col > 0, col, np.nan))
            lo, hi = np.nanmin(col) if np.any(~np.isnan(col)) else 0, np.nanmax(col) if np.any(~np.isnan(col)) else 1
            X[:, j] = (col - lo) / (hi - lo) if hi > lo else 0.5
        losses = np.array([v for v, _ in scored])
        colors = plt.cm.viridis((losses - losses.min()) / (np.ptp(losses) or 1))
        for row, color in zip(X, colors):
            ax.plot(range(len(labels)), row, color=color, alpha=0.8, marker="o", markersize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel("scaled value (log for log parameters)")
    ax.set_title(f"best {len(scored)} trials (dark = lower loss)")
    return _save(fig, out, "parallel")


def plot_timeline(docs: list[dict], out: Path) -> list[Path]:
    """One row per worker: a bar per trial from claim to finish, failures in red."""
    plt = _pyplot()
    timed = [d for d in docs if isinstance(d.get("claimed"), dt.datetime) and isinstance(d.get("finished"), dt.datetime)]
    owners = sorted({str(d.get("owner")) for d in timed})
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(owners) + 1.5))
    if timed:
        start = min(d["claimed"] for d in timed)
        for d in timed:
            row = owners.index(str(d.get("owner")))
            left = (d["claimed"] - start).total_seconds()
            width = max((d["finished"] - d["claimed"]).total_seconds(), 1e-3)
            ax.barh(row, width, left=left, color="C3" if d["state"] == "ERROR" else "C0", edgecolor="white")
    ax.set_yticks(range(len(owners)))
    ax.set_yticklabels(owners)
    ax.set_xlabel("seconds since the first claim")
    ax.set_title("trials per worker (red: failed)")
    return _save(fig, out, "timeline")


def plot_curves(docs: list[dict], out: Path) -> list[Path]:
    """Intermediate values reported by each trial against the step; pruned trials in red."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for d in docs:
        points = sorted((int(k), v) for k, v in (d.get("intermediate") or {}).items())
        if points:
            pruned = (d.get("result") or {}).get("status") == "pruned"
            steps, values = zip(*points)
            ax.plot(steps, values, color="C3" if pruned else "C0", alpha=0.5 if pruned else 0.8, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    ax.set_title("intermediate values (red: pruned)")
    return _save(fig, out, "curves")


def plot_all(docs: list[dict], space: SearchSpace, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = (plot_history(docs, out) + plot_parameters(docs, space, out) + plot_parallel(docs, space, out)
             + plot_timeline(docs, out))
    if any(d.get("intermediate") for d in docs):
        paths += plot_curves(docs, out)
    return paths
